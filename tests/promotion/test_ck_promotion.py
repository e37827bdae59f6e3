"""Promotion core with kind ``ck``: the CLI as a real process, versions, immutability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import workbench
from tests.promotion.conftest import PLANT_V1, PLANT_V2, ck_notebook, write_notebook
from workbench.cli import cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        wb.tenants.create("acme")
    return home


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``workbench --data-dir HOME ...`` as a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--data-dir", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "WORKBENCH_USER": "alice"},
    )


def invoke(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--data-dir", str(home), *args], catch_exceptions=False)


def test_promote_ck_imports_the_library_as_a_versioned_artifact(home: Path, tmp_path: Path) -> None:
    notebook = ck_notebook(tmp_path / "01-plant-model.ipynb", PLANT_V1)
    done = run_cli(home, "promote", "--tenant", "acme", str(notebook), "--kind", "ck", "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["ref"] == "plant-model@1"
    assert first["author"] == "alice"
    assert first["content_hash"].startswith("sha256:")
    assert first["details"]["libraries"] == ["Plant-1.0.0"]
    assert "pandas" in first["packages"]
    assert "json" not in first["packages"]
    assert first["deployment"] == {**first["deployment"], "version": 1, "state": "deployed"}
    with workbench.open(home) as wb:
        pump = wb.tenant("acme").entities.create("Plant/Pump", {"name": "P-1", "flowRate": 2.0})

    # version 2 adds an attribute: imported with migrations, the existing entity stays
    ck_notebook(notebook, PLANT_V2)
    done = run_cli(home, "promote", "--tenant", "acme", str(notebook), "--kind", "ck", "--json")
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)
    assert second["ref"] == "plant-model@2"
    assert second["report"]["imports"][0]["previousModelId"] == "Plant-1.0.0"
    with workbench.open(home) as wb:
        tenant = wb.tenant("acme")
        assert "Speed" in {a.name for a in tenant.model.type("Plant/Pump").attributes.values()}
        assert tenant.entities.get(pump.rt_id).attributes["flowRate"] == 2.0

    listed = json.loads(invoke(home, "promotions", "list", "--tenant", "acme", "--json").output)
    assert [(r["name"], r["kind"], r["deployed"], r["latest"]) for r in listed] == [
        ("plant-model", "ck", 2, 2)
    ]
    diff = invoke(home, "promotions", "diff", "--tenant", "acme", "plant-model", "1", "2").output
    assert "-modelId: Plant-1.0.0" in diff
    assert "+modelId: Plant-1.1.0" in diff


def test_a_ck_library_is_not_rolled_back_to_an_older_version(home: Path, tmp_path: Path) -> None:
    notebook = ck_notebook(tmp_path / "plant.ipynb", PLANT_V1)
    assert invoke(home, "promote", "--tenant", "acme", str(notebook), "--kind", "ck").exit_code == 0
    ck_notebook(notebook, PLANT_V2)
    assert invoke(home, "promote", "--tenant", "acme", str(notebook), "--kind", "ck").exit_code == 0
    done = run_cli(home, "promotions", "rollback", "--tenant", "acme", "plant")
    assert done.returncode == 1
    assert "cannot be downgraded" in done.stderr
    shown = invoke(home, "promotions", "show", "--tenant", "acme", "plant", "--json")
    assert json.loads(shown.output)["deployment"]["version"] == 2


def test_invalid_notebooks_are_refused_with_exit_status_1(home: Path, tmp_path: Path) -> None:
    broken = write_notebook(tmp_path / "broken.ipynb", ["%%ck\nmodelId: Broken-1.0.0\ntypes: 3\n"])
    done = run_cli(home, "promote", "--tenant", "acme", str(broken), "--kind", "ck")
    assert done.returncode == 1
    assert "cell 0" in done.stderr
    plain = write_notebook(tmp_path / "plain.ipynb", ["x = 1"])
    result = invoke(home, "promote", "--tenant", "acme", str(plain), "--kind", "ck")
    assert result.exit_code == 1
    assert "needs %%ck cells" in result.output
    result = invoke(home, "promote", "--tenant", "acme", str(plain), "--kind", "dashboard")
    assert result.exit_code == 2
    result = invoke(home, "promote", "--tenant", "nope", str(plain), "--kind", "ck")
    assert result.exit_code == 1
    assert "nope" in result.output
    listed = json.loads(invoke(home, "promotions", "list", "--tenant", "acme", "--json").output)
    assert listed == []


def test_artifacts_are_immutable(home: Path, tmp_path: Path) -> None:
    notebook = ck_notebook(tmp_path / "plant.ipynb", PLANT_V1)
    assert invoke(home, "promote", "--tenant", "acme", str(notebook), "--kind", "ck").exit_code == 0
    path = home / "tenants" / "acme" / "promotions" / "plant" / "versions" / "1.json"
    assert path.stat().st_mode & 0o777 == 0o444
    data = json.loads(path.read_text())
    data["notebook"]["cells"][1]["source"] = "import os; os.system('rm -rf /')"
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    result = invoke(home, "promotions", "show", "--tenant", "acme", "plant@1")
    assert result.exit_code == 1
    assert "immutable" in result.output
