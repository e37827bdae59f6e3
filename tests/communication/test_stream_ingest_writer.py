"""The Asset Repository's stream-points writer: a batch of dicts with the same keys goes to the
stream service as an Arrow table; the rows written and the errors are those of the dicts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pytest

from tests.conftest import METER_1, METER_2
from workbench.errors import ValidationError
from workbench.services.asset_repository.stream_ingest import (
    LINGER_SECONDS,
    StreamIngest,
    points_table,
)

METER = "Demo.Energy/EnergyMeter"
T0 = datetime(2026, 4, 1, tzinfo=UTC)


def _points(seconds: range) -> list[dict[str, Any]]:
    return [
        {"rtId": rt_id, "timestamp": (T0 + timedelta(seconds=s)).isoformat(), "voltage": 230.0 + s}
        for s in seconds
        for rt_id in (METER_1, METER_2)
    ]


class _Home:
    def __init__(self, tenant: Any) -> None:
        self._tenant = tenant

    def tenant(self, _tenant_id: str) -> Any:
        return self._tenant


def test_points_with_the_same_keys_become_a_table_others_stay_dicts() -> None:
    same = _points(range(3))
    table = points_table(same)
    assert isinstance(table, pa.Table)
    assert table.column_names == ["rtId", "timestamp", "voltage"]
    assert table.to_pylist() == same
    differing = [*same, {"rtId": METER_1, "timestamp": T0.isoformat(), "current": 5.0}]
    assert points_table(differing) is differing
    mixed = [{**same[0], "voltage": "high"}, same[1]]  # a column Arrow cannot hold
    assert points_table(mixed) is mixed
    assert points_table([]) == []


def test_the_writer_stores_the_batch_and_names_the_row_at_fault(demo: Any) -> None:
    write = StreamIngest(_Home(demo), bus=cast(Any, None))._writer(demo.id)
    assert write(METER, _points(range(5))) == 10
    stored = demo.streams(METER).read(T0, T0 + timedelta(minutes=1)).to_arrow()
    assert stored.num_rows == 10
    assert sorted(stored.column("voltage").to_pylist()) == sorted(
        p["voltage"] for p in _points(range(5))
    )
    # a value the type cannot take: the same error as for the dicts, naming row 3
    bad = _points(range(10, 12))
    bad[3]["voltage"] = float("inf")
    streams = demo.streams(METER)
    calls: list[Callable[[], object]] = [
        lambda: streams.write(bad),
        lambda: streams.write(points_table(bad)),
        lambda: write(METER, bad),  # through the writer
    ]
    messages = []
    for call in calls:
        with pytest.raises(ValidationError) as caught:
            call()
        messages.append(str(caught.value))
    assert "row 3: voltage" in messages[0]
    assert messages[1] == messages[0]
    assert messages[2] == messages[0]
    assert demo.streams(METER).read(T0, T0 + timedelta(minutes=1)).to_arrow().num_rows == 10


def test_consumers_linger_briefly_unless_told_otherwise() -> None:
    bus = cast(Any, None)
    assert StreamIngest(None, bus).options == {"linger_seconds": LINGER_SECONDS}
    assert LINGER_SECONDS < 0.1  # below the consumer's own default: a poll is not held back
    told = StreamIngest(None, bus, linger_seconds=0.5, max_points=100)
    assert told.options == {"linger_seconds": 0.5, "max_points": 100}
