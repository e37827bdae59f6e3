"""``workbench streams ...`` end to end: a Parquet round trip of 100,000 points, CSV and NDJSON,
aggregates, retention and errors (exit 1, message on stderr)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1, METER_2
from workbench.cli import cli
from workbench.streams import demo_points

METER = "Demo.Energy/EnergyMeter"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def run(tmp_path: Path) -> Any:
    data_dir = tmp_path / "data"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])

    assert invoke("tenant", "create", "acme").exit_code == 0
    assert invoke("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY)).exit_code == 0
    assert invoke("rt", "import", "--tenant", "acme", str(DEMO_RUNTIME)).exit_code == 0
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output + result.stderr
    return result


def test_parquet_round_trip_of_100k_points(run: Any, tmp_path: Path) -> None:
    source = demo_points([METER_1, METER_2], T0, days=50_000 / 86_400, step="1s")
    assert source.num_rows == 100_000
    pq.write_table(source, tmp_path / "in.parquet")
    written = json.loads(
        ok(
            run(
                "streams",
                "write",
                "--tenant",
                "acme",
                "--type",
                METER,
                str(tmp_path / "in.parquet"),
                "--chunk-rows",
                "30000",
                "--json",
            )
        ).stdout
    )
    assert written["points"] == 100_000
    ok(
        run(
            "streams",
            "read",
            "--tenant",
            "acme",
            "--type",
            METER,
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-02-01T00:00:00Z",
            "--out",
            str(tmp_path / "out.parquet"),
        )
    )
    back = pq.read_table(tmp_path / "out.parquet")
    expected = source.sort_by([("timestamp", "ascending"), ("rtId", "ascending")])
    expected = expected.rename_columns(["rtId", "timeStamp", *expected.column_names[2:]])
    assert back.column_names == expected.column_names
    assert back.equals(expected.cast(back.schema))


def test_csv_and_ndjson_round_trip_and_rt_id_filter(run: Any, tmp_path: Path) -> None:
    source = demo_points([METER_1, METER_2], T0, days=100 / 86_400, step="1s")
    for suffix in ("csv", "ndjson"):
        path = tmp_path / f"in.{suffix}"
        if suffix == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(source, path)
        else:
            path.write_text(
                "".join(
                    json.dumps(r | {"timestamp": r["timestamp"].isoformat()}) + "\n"
                    for r in source.to_pylist()
                )
            )
        ok(run("streams", "write", "--tenant", "acme", "--type", METER, str(path)))
    out = tmp_path / "out.csv"
    ok(
        run(
            "streams",
            "read",
            "--tenant",
            "acme",
            "--type",
            METER,
            "--rt-id",
            METER_2,
            "--attribute",
            "voltage",
            "--out",
            str(out),
        )
    )
    lines = out.read_text().splitlines()
    assert lines[0] == '"rtId","timeStamp","voltage"'
    assert len(lines) == 101
    assert lines[1].startswith(f'"{METER_2}","2026-01-01T00:00:00.000000Z",')
    stdout = ok(
        run(
            "streams",
            "read",
            "--tenant",
            "acme",
            "--type",
            METER,
            "--limit",
            "3",
            "--format",
            "json",
        )
    ).stdout
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["rtId"] for r in rows] == [METER_1, METER_2, METER_1]


def test_aggregate_retention_and_delete(run: Any, tmp_path: Path) -> None:
    pq.write_table(demo_points([METER_1], T0, days=2, step="1m"), tmp_path / "in.parquet")
    ok(run("streams", "write", "--tenant", "acme", "--type", METER, str(tmp_path / "in.parquet")))
    out = tmp_path / "agg.parquet"
    ok(
        run(
            "streams",
            "aggregate",
            "--tenant",
            "acme",
            "--type",
            METER,
            "--from",
            "2026-01-01T00:00Z",
            "--to",
            "2026-01-02T00:00Z",
            "--interval",
            "1h",
            "--fn",
            "avg",
            "--fn",
            "max",
            "--attribute",
            "voltage",
            "--out",
            str(out),
        )
    )
    table = pq.read_table(out)
    assert table.column_names == ["rtId", "bucket", "voltageAvg", "voltageMax"]
    assert table.num_rows == 24
    ok(run("streams", "retention", "set", "--tenant", "acme", "--type", METER, "1d"))
    assert json.loads(
        ok(run("streams", "retention", "show", "--tenant", "acme", "--json")).stdout
    ) == {METER: "1d"}
    applied = json.loads(
        ok(
            run(
                "streams",
                "retention",
                "apply",
                "--tenant",
                "acme",
                "--now",
                "2026-01-02T12:00:00+00:00",
                "--json",
            )
        ).stdout
    )
    assert applied == {METER: 12 * 60}
    refused = run("streams", "delete", "--tenant", "acme", "--type", METER)
    assert refused.exit_code == 1
    assert "--yes" in refused.stderr
    deleted = json.loads(
        ok(run("streams", "delete", "--tenant", "acme", "--type", METER, "--yes", "--json")).stdout
    )
    assert deleted["deleted"] == 36 * 60


def test_bad_file_exits_1_naming_file_row_and_column(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    rows = ["rtId,timestamp,voltage"] + [
        f"{METER_1},2026-01-01T00:00:{i:02d}Z,230" for i in range(5)
    ]
    rows[4] = f"{METER_1},2026-01-01T00:00:03Z,abc"
    path.write_text("\n".join(rows) + "\n")
    result = run(
        "streams", "write", "--tenant", "acme", "--type", METER, str(path), "--chunk-rows", "2"
    )
    assert result.exit_code == 1
    assert "row 3: voltage" in result.stderr
    assert "expects a number, got 'abc'" in result.stderr
    stdout = ok(
        run("streams", "read", "--tenant", "acme", "--type", METER, "--format", "json")
    ).stdout
    assert stdout == ""


def test_unknown_type_and_parquet_to_stdout_fail_cleanly(run: Any) -> None:
    result = run("streams", "read", "--tenant", "acme", "--type", "Demo.Energy/Nope")
    assert result.exit_code == 1
    assert "Demo.Energy/Nope" in result.stderr
    result = run("streams", "read", "--tenant", "acme", "--type", METER, "--format", "parquet")
    assert result.exit_code == 1
    assert "--out" in result.stderr


def test_timestamp_types_survive_pa_cast(tmp_path: Path) -> None:
    assert pa.array([0], pa.int64()).cast(pa.timestamp("us", tz="UTC"))[0].as_py() == datetime(
        1970, 1, 1, tzinfo=UTC
    )
