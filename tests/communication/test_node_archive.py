"""SaveTimeRangeStreamDataInArchive@1 on the demo tenant: the archive holds exactly the stream
points of [from, to) (of the rtIds asked), in the stream archive format the stream-import bot
reads back; it is written under the adapter's archive root only."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import METER_1, METER_2
from workbench.bots.builtin.transfer import import_streams
from workbench.communication import run_pipeline
from workbench.communication.nodes.archive import ARCHIVE_DIR_ENV

METER = "Demo.Energy/EnergyMeter"


def _run(body: str, data: Any, tenant: Any) -> Any:
    definition = "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n" + body
    return asyncio.run(run_pipeline(definition, data, name="archive", tenant=tenant))


def _points(demo: Any) -> None:
    demo.streams(METER).write(
        [
            {"rtId": r, "timestamp": f"2026-03-01T10:0{m}:00+00:00", "voltage": 230.0 + m}
            for m in range(6)
            for r in (METER_1, METER_2)
        ]
    )


def test_archive_holds_exactly_the_points_of_the_range(
    demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ARCHIVE_DIR_ENV, str(tmp_path / "archives"))
    _points(demo)
    body = f"""
  - type: SaveTimeRangeStreamDataInArchive@1
    ckTypeId: {METER}
    fromPath: $.window.from
    to: "2026-03-01T10:04:00+00:00"
    rtIdPath: $.meters
    archiveName: daily/meter-1
    targetPath: $.archived
"""
    window = {"window": {"from": "2026-03-01T10:01:00+00:00"}, "meters": [METER_1]}
    result = _run(body, window, demo)
    assert result.status == "Completed", result.error
    folder = tmp_path / "archives" / "daily" / "meter-1"
    assert result.output["archived"]["archive"] == str(folder)
    assert result.output["archived"]["points"] == {METER: 3}
    table = pq.read_table(folder / "streams" / "Demo.Energy__EnergyMeter.parquet")
    rows = sorted(
        (row["rtId"], row["timeStamp"].isoformat(), row["voltage"]) for row in table.to_pylist()
    )
    # from included, to excluded, only the meter asked for
    assert rows == [
        (METER_1, "2026-03-01T10:01:00+00:00", 231.0),
        (METER_1, "2026-03-01T10:02:00+00:00", 232.0),
        (METER_1, "2026-03-01T10:03:00+00:00", 233.0),
    ]
    # the archive is the stream-import format: it writes back what it holds
    assert import_streams(demo, folder) == {METER: 3}


def test_all_entities_by_default_and_the_range_is_required(
    demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ARCHIVE_DIR_ENV, raising=False)
    _points(demo)
    body = f"""
  - {{type: SaveTimeRangeStreamDataInArchive@1, ckTypeId: [{METER}],
     from: "2026-03-01T10:00:00Z", to: "2026-03-01T10:02:00Z", targetPath: $.a}}
"""
    result = _run(body, {}, demo)
    assert result.status == "Completed", result.error
    folder = Path(result.output["a"]["archive"])
    assert folder == tmp_path / "archives" / "streams-2026-03-01T100000Z-2026-03-01T100200Z"
    assert pq.read_table(folder / "streams" / "Demo.Energy__EnergyMeter.parquet").num_rows == 4
    missing = _run(
        f"  - {{type: SaveTimeRangeStreamDataInArchive@1, ckTypeId: {METER}}}\n", {}, demo
    )
    assert missing.status == "Failed"
    assert "property 'from': the time range needs its 'from'" in (missing.error or "")


@pytest.mark.attack
@pytest.mark.parametrize("name", ["../../etc", "a/../../b"])
def test_archive_name_cannot_leave_the_archive_root(
    demo: Any, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ARCHIVE_DIR_ENV, str(tmp_path / "archives"))
    result = _run(
        f"  - {{type: SaveTimeRangeStreamDataInArchive@1, ckTypeId: {METER},"
        f" from: '2026-03-01T10:00:00Z', to: '2026-03-01T10:02:00Z', archiveName: '{name}'}}\n",
        {},
        demo,
    )
    assert result.status == "Failed"
    assert "archiveName" in (result.error or "")
    assert not (tmp_path / "etc").exists()
    assert not (tmp_path / "b").exists()


def test_an_absolute_archive_name_is_refused_at_validation() -> None:
    from workbench.communication import validate_pipeline

    problems = validate_pipeline(
        "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n"
        f"  - {{type: SaveTimeRangeStreamDataInArchive@1, ckTypeId: {METER}, archiveName: /etc}}\n"
    )
    assert "property 'archiveName': '/etc' does not match" in " ".join(str(p) for p in problems)
