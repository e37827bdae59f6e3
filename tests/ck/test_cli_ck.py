"""``workbench ck import/validate`` on the OctoMesh-shaped kits: warnings, ``--strict``, counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.ck.test_octo_kits import (
    BASIC,
    ENERGY_COMMUNITY,
    ENERGY_DEMO,
    INDUSTRY_BASIC_2_0,
    INDUSTRY_ENERGY,
)
from workbench.cli import cli


@pytest.fixture
def run(tmp_path: Path) -> Any:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args])

    return invoke


def test_import_reports_types_and_grouped_warnings(run: Any) -> None:
    assert run("tenant", "create", "plant").exit_code == 0
    result = run("ck", "import", "--tenant", "plant", str(BASIC))
    assert result.exit_code == 0, result.output
    assert "imported Basic-2.0.0 into tenant plant (2 types)" in result.stdout
    assert "2 warning(s) (accepted; --strict makes them errors)" in result.stdout
    assert "unknown key 'isDataStream' in attribute is kept but not used" in result.stdout
    data = json.loads(
        run("ck", "import", "--tenant", "plant", str(INDUSTRY_BASIC_2_0), "--json").stdout
    )
    assert (data["modelId"], data["types"], data["warnings"]) == ("Industry.Basic-2.0.0", 3, [])


def test_strict_refuses_what_is_otherwise_a_warning(run: Any) -> None:
    assert run("tenant", "create", "plant").exit_code == 0
    result = run("ck", "import", "--tenant", "plant", "--strict", str(BASIC))
    assert result.exit_code == 1
    assert "an error under --strict" in result.stderr
    listed = json.loads(run("ck", "list", "--tenant", "plant", "--json").stdout)
    assert "Basic-2.0.0" not in {row["modelId"] for row in listed}


def test_an_absent_platform_library_is_a_warning_and_under_strict_an_error(
    run: Any, tmp_path: Path
) -> None:
    assert run("tenant", "create", "plant").exit_code == 0
    assert run("ck", "import", "--tenant", "plant", str(BASIC)).exit_code == 0
    refused = run("ck", "import", "--tenant", "plant", "--strict", str(ENERGY_COMMUNITY))
    assert refused.exit_code == 1
    assert "EnergyCommunity-2.0.0 has 3 warning(s), errors under --strict" in refused.stderr
    listed = json.loads(run("ck", "list", "--tenant", "plant", "--json").stdout)
    assert "EnergyCommunity-2.0.0" not in {row["modelId"] for row in listed}
    ui_user = tmp_path / "UiUser"
    (ui_user / "types").mkdir(parents=True)
    (ui_user / "ckModel.yaml").write_text("modelId: UiUser-1.0.0\ndependencies: [System.UI-2.0]\n")
    (ui_user / "types" / "t.yaml").write_text(
        "types: [{typeId: T, attributes: [{id: '${System.UI}/Theme.Colors', name: Colors}]}]\n"
    )
    assert run("ck", "validate", str(ui_user)).exit_code == 0
    strict_check = run("ck", "validate", "--strict", str(ui_user))
    assert strict_check.exit_code == 1
    assert "UiUser-1.0.0 has 2 warning(s), errors under --strict" in strict_check.stderr
    data = json.loads(run("ck", "validate", str(BASIC), str(ENERGY_COMMUNITY), "--json").stdout)
    assert len(data["warnings"]) == 5  # Basic's two unknown keys, the three of System.UI
    data = json.loads(
        run("ck", "import", "--tenant", "plant", str(ENERGY_COMMUNITY), "--json").stdout
    )
    assert data["addedTypes"] == ["EnergyCommunity/Configuration", "EnergyCommunity/Member"]
    assert [w.split("System.UI")[0].rsplit(": ", 1)[-1] for w in data["warnings"]] == [
        "depends on ",
        "attribute 'Colors' (",
        "association ",
    ]


def test_validate_counts_types_per_library_like_import(run: Any) -> None:
    paths = [str(p) for p in (BASIC, INDUSTRY_BASIC_2_0, INDUSTRY_ENERGY, ENERGY_DEMO)]
    data = json.loads(run("ck", "validate", *paths, "--json").stdout)
    assert data["typesByLibrary"] == {
        "Basic-2.0.0": 2,
        "Industry.Basic-2.0.0": 3,
        "Industry.Energy-2.0.0": 3,
        "Octo.Energy.Demo-0.0.0": 1,
    }
    assert data["types"] == 9
    assert len(data["warnings"]) == 4  # isDataStream, isCollectionRoot, bare modelId, bare dep
