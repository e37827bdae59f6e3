"""The ``workbench`` command line, end to end on a temporary data directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1, METER_2
from workbench.cli import cli


@pytest.fixture
def run(tmp_path: Path) -> Any:
    data_dir = tmp_path / "data"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])

    return invoke


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output + result.stderr
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def test_help_and_version() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for group in ("tenant", "ck", "rt", "demo", "bench"):
        assert group in result.output
    assert CliRunner().invoke(cli, ["--version"]).output.startswith("workbench")


def test_tenant_lifecycle(run: Any) -> None:
    ok(run("tenant", "create", "acme"))
    ok(run("tenant", "create", "acme-child", "--parent", "acme"))
    listed = as_json(run("tenant", "list", "--json"))
    assert [(t["id"], t["parent"]) for t in listed] == [("acme", None), ("acme-child", "acme")]
    refused = run("tenant", "delete", "acme-child")
    assert refused.exit_code == 1
    assert "--yes" in refused.stderr
    ok(run("tenant", "delete", "acme-child", "--yes"))
    assert [t["id"] for t in as_json(run("tenant", "list", "--json"))] == ["acme"]


def test_bad_tenant_id_exits_non_zero_with_message(run: Any) -> None:
    result = run("tenant", "create", "Bad_Name")
    assert result.exit_code == 1
    assert "tenant id 'Bad_Name' is invalid" in result.stderr
    assert result.stdout == ""


def test_sample_library_and_runtime_import_and_query(run: Any, tmp_path: Path) -> None:
    ok(run("tenant", "create", "acme"))
    imported = as_json(run("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY), "--json"))
    assert imported["modelId"] == "Demo.Energy-1.0.0"
    assert "Demo.Energy/EnergyMeter" in imported["addedTypes"]
    libraries = as_json(run("ck", "list", "--tenant", "acme", "--json"))
    assert {lib["modelId"] for lib in libraries} == {
        "Demo.Energy-1.0.0",
        "System-2.0.0",
        "System.Bot-3.0.0",
        "System.Communication-3.0.0",
    }
    shown = as_json(run("ck", "show", "--tenant", "acme", "Demo.Energy/EnergyMeter", "--json"))
    names = {a["name"] for a in shown["attributes"]}
    assert {"name", "serialNumber", "state", "voltage", "phaseL1"} <= names
    assert ok(run("rt", "import", "--tenant", "acme", str(DEMO_RUNTIME)))
    page = as_json(
        run(
            "rt",
            "query",
            "--tenant",
            "acme",
            "Demo.Energy/EnergyMeter",
            "--filter",
            "state EQUALS Active",
            "--json",
        )
    )
    assert [item["rtId"] for item in page["items"]] == [METER_1]
    assert page["items"][0]["ckTypeId"] == "Demo.Energy/EnergyMeter"
    assert page["items"][0]["serialNumber"] == "EM-0001"
    assert page["pageInfo"] == {"hasNextPage": False, "endCursor": page["pageInfo"]["endCursor"]}
    page = as_json(
        run(
            "rt",
            "query",
            "--tenant",
            "acme",
            "Demo.Energy/EnergyMeter",
            "--filter",
            "phaseL1.voltage GREATER_THAN 230",
            "--json",
        )
    )
    assert [item["rtId"] for item in page["items"]] == [METER_1]
    page = as_json(
        run(
            "rt",
            "query",
            "--tenant",
            "acme",
            "Demo.Energy/Meter",
            "--filter",
            "voltage>=231",
            "--sort",
            "-serialNumber",
            "--json",
        )
    )
    assert [item["rtId"] for item in page["items"]] == [METER_1]
    page = as_json(
        run(
            "rt",
            "query",
            "--tenant",
            "acme",
            "Demo.Energy/Meter",
            "--sort",
            "-serialNumber",
            "--first",
            "1",
            "--json",
        )
    )
    assert [item["rtId"] for item in page["items"]] == [METER_2]
    assert page["pageInfo"]["hasNextPage"] is True
    out = tmp_path / "export.yaml"
    exported = as_json(run("rt", "export", "--tenant", "acme", str(out), "--json"))
    assert exported["exported"] == 4
    ok(run("tenant", "create", "copy"))
    ok(run("ck", "import", "--tenant", "copy", str(DEMO_LIBRARY)))
    ok(run("rt", "import", "--tenant", "copy", str(out)))
    again = as_json(run("rt", "query", "--tenant", "copy", "Demo.Energy/NamedAsset", "--json"))
    assert len(again["items"]) == 4


def test_bad_filter_and_unknown_type_errors(run: Any) -> None:
    ok(run("tenant", "create", "acme"))
    ok(run("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY)))
    result = run(
        "rt", "query", "--tenant", "acme", "Demo.Energy/EnergyMeter", "--filter", "nope EQUALS 1"
    )
    assert result.exit_code == 1
    assert "nope" in result.stderr
    result = run("rt", "query", "--tenant", "acme", "Demo.Energy/Nope")
    assert result.exit_code == 1
    assert "Demo.Energy/Nope" in result.stderr


def test_invalid_library_changes_nothing(run: Any, tmp_path: Path) -> None:
    ok(run("tenant", "create", "acme"))
    broken = tmp_path / "Broken"
    shutil.copytree(DEMO_LIBRARY, broken)
    meters = broken / "types" / "meters.yaml"
    meters.write_text(meters.read_text().replace("${this}/Building", "${this}/Buildin"))
    result = run("ck", "validate", str(broken))
    assert result.exit_code == 1
    assert "Buildin" in result.stderr
    assert "meters.yaml" in result.stderr
    result = run("ck", "import", "--tenant", "acme", str(broken))
    assert result.exit_code == 1
    libraries = as_json(run("ck", "list", "--tenant", "acme", "--json"))
    assert [lib["modelId"] for lib in libraries] == [
        "System-2.0.0",
        "System.Bot-3.0.0",
        "System.Communication-3.0.0",
    ]


def test_runtime_file_with_a_bad_entity_imports_nothing(run: Any, tmp_path: Path) -> None:
    ok(run("tenant", "create", "acme"))
    ok(run("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO_RUNTIME.read_text().replace("value: 231.5", "value: lots"))
    result = run("rt", "import", "--tenant", "acme", str(bad))
    assert result.exit_code == 1
    assert "voltage" in result.stderr.lower()
    page = as_json(run("rt", "query", "--tenant", "acme", "Demo.Energy/NamedAsset", "--json"))
    assert page["items"] == []


def test_console_script_runs_in_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "--data-dir",
            str(tmp_path),
            "tenant",
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_rt_aggregate(run: Any) -> None:
    ok(run("tenant", "create", "acme"))
    ok(run("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY)))
    ok(run("rt", "import", "--tenant", "acme", str(DEMO_RUNTIME)))
    rows = as_json(
        run(
            "rt", "aggregate", "--tenant", "acme", "Demo.Energy/Meter",
            "--group-by", "state", "--group-by", "parent->name", "--sum", "voltage",
            "--filter", "name LIKE 'Meter%'", "--json",
        )
    )  # fmt: skip
    assert rows == [
        {"state": "Active", "parent->name": "Hall A", "count": 1, "voltage_sum": 231.5},
        {"state": "Faulty", "parent->name": "Hall A", "count": 1, "voltage_sum": None},
    ]
    indexed = as_json(
        run(
            "rt", "aggregate", "--tenant", "acme", "Demo.Energy/Meter", "--group-by", "state",
            "--create-index", "--json",
        )
    )  # fmt: skip
    assert indexed == [{"state": "Active", "count": 1}, {"state": "Faulty", "count": 1}]
    table = ok(run("rt", "aggregate", "--tenant", "acme", "Demo.Energy/Meter", "--count", "name"))
    assert "name_count" in table.stdout
    bad = run("rt", "aggregate", "--tenant", "acme", "Demo.Energy/Meter", "--sum", "name")
    assert bad.exit_code == 1
    assert "cannot sum 'name'" in bad.stderr
