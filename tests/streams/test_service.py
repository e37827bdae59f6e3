"""The stream service on a real tenant (Demo.Energy + sample entities, DuckDB stream store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.conftest import BUILDING, METER_1, METER_2
from workbench.errors import NotFound, ValidationError
from workbench.streams import demo_points

METER = "Demo.Energy/EnergyMeter"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def streams(demo: Any) -> Any:
    return demo.streams(METER)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_write_list_of_dicts_and_read_back_with_graphql_names(streams: Any) -> None:
    written = streams.write(
        [
            {"rtId": METER_1, "timestamp": at(0), "Voltage": 230.5, "state": "active"},
            {"rtId": METER_2, "timestamp": "2026-01-01T01:00:00+01:00", "voltage": 231},
        ]
    )
    assert written == 2
    result = streams.read(T0, at(60))
    rows = result.rows()
    assert result.to_arrow().column_names == ["rtId", "timeStamp", "voltage", "state"]
    assert rows == [
        {"rtId": METER_1, "timeStamp": at(0), "voltage": 230.5, "state": "Active"},
        {"rtId": METER_2, "timeStamp": at(0), "voltage": 231.0, "state": None},
    ]
    assert not result.has_next_page
    assert isinstance(result.to_pandas(), pd.DataFrame)


def test_enum_given_by_key_is_stored_by_name(streams: Any) -> None:
    streams.write([{"rtId": METER_1, "timestamp": at(0), "State": 1}])
    assert streams.read(attributes=["state"]).rows()[0]["state"] == "Active"


def test_pandas_wide_and_long_forms(streams: Any) -> None:
    wide = pd.DataFrame(
        {
            "rtId": [METER_1, METER_1],
            "timestamp": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]),
            "voltage": [230.0, np.nan],
            "current": [5.0, 6.0],
        }
    )
    assert streams.write(wide) == 2
    long = pd.DataFrame(
        {
            "rtId": [METER_1, METER_1, METER_2],
            "timestamp": pd.to_datetime(["2026-01-01T00:00:01Z"] * 3),
            "attribute": ["Voltage", "State", "current"],
            "value": [229.0, "Faulty", 7],
        }
    )
    assert streams.write(long) == 3
    rows = streams.read(T0, at(10)).rows()
    assert [(r["rtId"], r["voltage"], r["current"], r["state"]) for r in rows] == [
        (METER_1, 230.0, 5.0, None),
        (METER_1, 229.0, 6.0, "Faulty"),
        (METER_2, None, 7.0, None),
    ]


def test_bad_batch_names_row_column_reason_and_writes_nothing(streams: Any) -> None:
    rows = [
        {"rtId": METER_1, "timestamp": at(0), "voltage": 230.0},
        {"rtId": METER_1, "timestamp": at(1), "voltage": "abc"},
        {"rtId": METER_1, "timestamp": at(2), "state": "Exploded"},
    ]
    with pytest.raises(ValidationError) as caught:
        streams.write(rows)
    details = {(d.location, d.element): d.message for d in caught.value.details}
    assert "expects a number, got 'abc'" in details[("row 1", "voltage")]
    assert "Exploded" in details[("row 2", "state")]
    assert "nothing was written" in str(caught.value)
    assert len(streams.read()) == 0


@pytest.mark.parametrize(
    ("row", "location", "element", "reason"),
    [
        ({"rtId": "0" * 24, "timestamp": at(0), "voltage": 1.0}, "row 1", "rtId", "no entity"),
        ({"rtId": BUILDING, "timestamp": at(0), "voltage": 1.0}, "row 1", "rtId", "Building"),
        ({"rtId": METER_1, "timestamp": at(0), "nope": 1.0}, "columns", "nope", "no attribute"),
        ({"rtId": METER_1, "timestamp": at(0), "phaseL1": 1.0}, "columns", "phaseL1", "Record"),
        (
            {"rtId": METER_1, "timestamp": "yesterday", "voltage": 1},
            "row 1",
            "timeStamp",
            "ISO 8601",
        ),
        (
            {"rtId": METER_1, "timestamp": at(0), "serialNumber": ["x"]},
            "row 1",
            "serialNumber",
            "string",
        ),
    ],
)
def test_each_bad_input_gets_its_error(
    streams: Any, row: dict[str, Any], location: str, element: str, reason: str
) -> None:
    good = {"rtId": METER_1, "timestamp": at(5), "voltage": 1.0}
    with pytest.raises(ValidationError) as caught:
        streams.write([good, row])
    assert any(
        d.location == location and d.element == element and reason in d.message
        for d in caught.value.details
    ), caught.value
    assert len(streams.read()) == 0


def test_naive_timestamps_rejected_unless_a_zone_is_named(streams: Any) -> None:
    naive = pd.DataFrame(
        {"rtId": [METER_1], "timestamp": [datetime(2026, 7, 1, 12, 0)], "voltage": [230.0]}
    )
    with pytest.raises(ValidationError, match="naive") as caught:
        streams.write(naive)
    assert caught.value.details[0].location == "row 0"
    with pytest.raises(ValidationError, match="naive"):
        streams.write([{"rtId": METER_1, "timestamp": "2026-07-01T12:00:00", "voltage": 1.0}])
    assert streams.write(naive, timezone="Europe/Vienna") == 1
    assert streams.read().rows()[0]["timeStamp"] == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="unknown"):
        streams.write(naive, timezone="Mars/Olympus")


def test_abstract_and_unknown_types(demo: Any) -> None:
    with pytest.raises(ValidationError, match="abstract"):
        demo.streams("Demo.Energy/Meter").write([{"rtId": METER_1, "timestamp": at(0)}])
    with pytest.raises(NotFound):
        demo.streams("Demo.Energy/Nope")


def test_last_write_wins_through_the_service(streams: Any) -> None:
    streams.write([{"rtId": METER_1, "timestamp": at(0), "voltage": 1.0, "current": 2.0}])
    streams.write([{"rtId": METER_1, "timestamp": at(0), "voltage": 3.0}])
    assert streams.read().rows()[0] | {} == {
        "rtId": METER_1,
        "timeStamp": at(0),
        "voltage": 3.0,
        "current": 2.0,
    }


def test_paging_descending_and_attribute_subset(streams: Any) -> None:
    streams.write(demo_points([METER_1, METER_2], T0, days=1 / 24 / 60, step="1s"))
    full = streams.read(T0, at(60), descending=True, attributes=["voltage"]).to_arrow()
    assert full.column_names == ["rtId", "timeStamp", "voltage"]
    pages, after = [], None
    while True:
        page = streams.read(
            T0, at(60), descending=True, attributes=["voltage"], first=25, after=after
        )
        pages.append(page.to_arrow())
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert pa.concat_tables(pages).equals(full)
    # an attribute of the type that was never written reads as nulls
    empty = streams.read(T0, at(1), attributes=["installedAt"]).to_arrow()
    assert empty.column("installedAt").null_count == empty.num_rows == 2


def test_aggregate_equals_pandas_and_downsample_respects_limit(streams: Any) -> None:
    table = demo_points([METER_1, METER_2], T0, days=0.25, step="1s")
    streams.write(table)
    result = streams.aggregate(T0, at(6 * 3600), "15m", ["AVG", "max", "first", "count"])
    frame = result.to_pandas()
    assert result.interval == "15m"
    source = table.to_pandas()
    source["bucket"] = source["timestamp"].dt.floor("15min")
    expected = source.groupby(["rtId", "bucket"]).agg(
        voltageAvg=("voltage", "mean"),
        voltageMax=("voltage", "max"),
        voltageFirst=("voltage", "first"),
        voltageCount=("voltage", "count"),
    )
    got = frame.set_index(["rtId", "bucket"])[list(expected.columns)]
    assert len(got) == len(expected) == 2 * 24
    np.testing.assert_allclose(got.to_numpy(float), expected.loc[got.index].to_numpy(float))
    down = streams.downsample(T0, at(6 * 3600), 100, rt_ids=[METER_1], attributes=["voltage"])
    assert down.interval == "5m"
    assert len(down) <= 100
    assert down.to_arrow().column_names == ["rtId", "bucket", "voltage"]


def test_delete_and_retention(demo: Any, streams: Any) -> None:
    streams.write(demo_points([METER_1], T0, days=3, step="1h"))
    assert streams.delete(at(0), at(3600 * 2)) == 2
    assert streams.retention() is None
    assert streams.set_retention("24h") == "1d"
    assert demo.stream_service.retention_policies() == {METER: "1d"}
    deleted = demo.stream_service.apply_retention(now=T0 + timedelta(days=2))
    assert deleted == {METER: 22}
    assert len(streams.read()) == 72 - 2 - 22
    streams.set_retention(None)
    assert demo.stream_service.retention_policies() == {}
    with pytest.raises(ValidationError, match="duration"):
        streams.set_retention("3 months")


def test_aware_range_required(streams: Any) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        streams.read(datetime(2026, 1, 1), None)
    with pytest.raises(ValidationError, match="interval"):
        streams.aggregate(T0, at(10), "1 fortnight")


def test_arrow_table_from_pandas_with_its_index(streams: Any) -> None:
    """``pa.Table.from_pandas`` (and so a Parquet file pandas writes) keeps a non-range index as
    the column ``__index_level_0__``: it is ignored, not rejected as an unknown attribute."""
    frame = pd.DataFrame(
        {
            "rtId": [METER_1] * 3,
            "timeStamp": pd.date_range("2026-01-01", periods=3, freq="1s", tz="UTC"),
            "voltage": [1.0, 2.0, 3.0],
        }
    )
    table = pa.Table.from_pandas(frame.set_index(pd.Index([7, 3, 5])).iloc[1:])
    assert "__index_level_0__" in table.column_names
    assert streams.write(table) == 2
    assert streams.read().to_pandas()["voltage"].tolist() == [2.0, 3.0]
