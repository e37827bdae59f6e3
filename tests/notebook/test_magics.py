"""The extension's magics on a real IPython shell: %wb, %%ck, %%graphql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

from tests.notebook.conftest import PLANT_V1, TENANT
from workbench.client.local import Tenant
from workbench.errors import ModelError, ValidationError
from workbench.notebook.connection import NotebookConnection
from workbench.notebook.display import ImportReportView
from workbench.notebook.magics import UnboundClient, parse_variables

PLANT_V2 = (
    PLANT_V1.replace("Plant-1.0.0", "Plant-1.1.0").replace("name: Status", "name: State")
    + """\
migrations:
  - fromVersion: 1.0.0
    toVersion: 1.1.0
    steps:
      - {action: RenameAttribute, ckTypeId: "${this}/Machine", from: Status, to: State}
"""
)


def test_wb_is_bound_to_the_tenant(ip: Any, data_dir: Path) -> None:
    wb = ip.user_ns["wb"]
    assert isinstance(wb, Tenant)
    assert wb.id == TENANT
    info = ip.run_line_magic("wb", "")
    assert isinstance(info, NotebookConnection)
    assert info.summary() == {
        "tenant": TENANT,
        "user": "ada",
        "server": str(data_dir.resolve()),
        "mode": "in-process",
    }
    assert "ada" in info._repr_html_()


def test_wb_rebinds_to_another_tenant(ip: Any, data_dir: Path) -> None:
    import workbench

    with workbench.open(data_dir) as opened:
        opened.tenants.create("other")
    info = ip.run_line_magic("wb", "--tenant other")
    assert info.tenant == "other"
    assert ip.user_ns["wb"].id == "other"


def test_unknown_tenant_leaves_wb_unbound_with_the_reason(
    shell: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKBENCH_HOME", str(data_dir))
    monkeypatch.setenv("WORKBENCH_TENANT", "nobody")
    shell.run_line_magic("load_ext", "workbench.notebook")
    try:
        assert "nobody" in capsys.readouterr().err
        wb = shell.user_ns["wb"]
        assert isinstance(wb, UnboundClient)
        with pytest.raises(UsageError, match="nobody"):
            _ = wb.entities
        with pytest.raises(UsageError, match="not bound"):
            shell.run_line_magic("wb", "")
        with pytest.raises(UsageError, match="not bound"):
            shell.run_cell_magic("ck", "", PLANT_V1)
    finally:
        shell.run_line_magic("unload_ext", "workbench.notebook")


def test_ck_imports_and_reports_added_types(ip: Any) -> None:
    view = ip.run_cell_magic("ck", "", PLANT_V1)
    assert isinstance(view, ImportReportView)
    assert view.report.added_types == ["Plant/Machine", "Plant/Pump"]
    assert "Plant/Pump" in str(view)
    assert "Plant/Pump" in view._repr_html_()
    assert "Plant/Pump" in ip.user_ns["wb"].model.types
    again = ip.run_cell_magic("ck", "", PLANT_V1)
    assert again.report.unchanged
    assert "unchanged" in str(again)


def test_ck_check_validates_without_importing(ip: Any) -> None:
    view = ip.run_cell_magic("ck", "--check", PLANT_V1)
    assert view.dry_run
    assert view.report.added_types == ["Plant/Machine", "Plant/Pump"]
    assert "would import" in str(view)
    assert "Plant/Pump" not in ip.user_ns["wb"].model.types


def test_ck_upgrade_migrates_entities_and_reports_changes(plant: Any, ip: Any) -> None:
    pump = plant.entities.create("Plant/Pump", {"name": "P-1", "status": "running"})
    check = ip.run_cell_magic("ck", "--check", PLANT_V2)
    assert check.report.previous_model_id == "Plant-1.0.0"
    assert check.report.changed_types == ["Plant/Machine", "Plant/Pump"]
    view = ip.run_cell_magic("ck", "", PLANT_V2)
    assert view.report.model_id == "Plant-1.1.0"
    assert view.report.changed_types == ["Plant/Machine", "Plant/Pump"]
    assert view.report.migrated_entities == 1
    assert "migrated entities  1" in str(view)
    assert plant.entities.get(pump.rt_id)["state"] == "running"


def test_ck_refuses_an_invalid_library_and_changes_nothing(plant: Any, ip: Any) -> None:
    broken = PLANT_V1.replace("Plant-1.0.0", "Plant-2.0.0").replace(
        "${this}/Machine\n    attributes", "${this}/Nope\n    attributes"
    )
    with pytest.raises(ModelError) as caught:
        ip.run_cell_magic("ck", "", broken)
    lines = caught.value._render_traceback_()  # type: ignore[attr-defined]
    assert lines[0].startswith("ModelError: ")
    assert any("Plant/Nope" in line for line in lines[1:])
    assert plant.ck.own_libraries()["Plant"].model_id == "Plant-1.0.0"


def test_ck_refusal_shows_no_python_traceback(plant: Any, ip: Any) -> None:
    result = ip.run_cell("%%ck\nmodelId: Broken-1.0.0\ntypes: not-a-list\n")
    assert not result.success
    assert isinstance(result.error_in_exec, ModelError)


def test_ck_reports_yaml_errors(ip: Any) -> None:
    with pytest.raises(ModelError, match="not valid YAML"):
        ip.run_cell_magic("ck", "", "modelId: [unclosed\n")


PUMPS = """{ runtime {
  rtPlantPump(sortOrder: [{attributePath: "name", sortOrder: ASCENDING}]) {
    items { name flowRate }
  }
} }"""


def test_graphql_list_comes_back_as_a_dataframe(plant: Any, ip: Any) -> None:
    plant.entities.create("Plant/Pump", {"name": "P-2", "flowRate": 2.0})
    plant.entities.create("Plant/Pump", {"name": "P-1", "flowRate": 1.0})
    frame = ip.run_cell_magic("graphql", "-o pumps", PUMPS)
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [
        {"name": "P-1", "flowRate": 1.0},
        {"name": "P-2", "flowRate": 2.0},
    ]
    assert ip.user_ns["pumps"] is frame


def test_graphql_variables_from_options_and_namespace(plant: Any, ip: Any) -> None:
    pump = plant.entities.create("Plant/Pump", {"name": "P-1", "flowRate": 1.5})
    query = "query($id: ID) { runtime { rtPlantPump(rtId: $id) { totalCount } } }"
    ip.user_ns["pump_id"] = pump.rt_id
    assert ip.run_cell_magic("graphql", "-v id=65a1b2c3d4e5f60718293a4b", query) == {
        "runtime": {"rtPlantPump": {"totalCount": 0}}
    }
    assert ip.run_cell_magic("graphql", "-v pump_id", query.replace("$id", "$pump_id")) == {
        "runtime": {"rtPlantPump": {"totalCount": 1}}
    }
    ip.user_ns["query_vars"] = {"id": pump.rt_id}
    assert ip.run_cell_magic("graphql", "--vars query_vars", query) == {
        "runtime": {"rtPlantPump": {"totalCount": 1}}
    }


def test_graphql_raw_and_errors(plant: Any, ip: Any) -> None:
    raw = ip.run_cell_magic("graphql", "--raw", "{ runtime { rtPlantPump { items { name } } } }")
    assert raw == {"runtime": {"rtPlantPump": {"items": []}}}
    with pytest.raises(ValidationError, match="nope"):
        ip.run_cell_magic("graphql", "", "{ runtime { nope } }")
    with pytest.raises(UsageError, match="no dict"):
        ip.run_cell_magic("graphql", "--vars missing", "{ __typename }")


def test_parse_variables() -> None:
    namespace = {"limit": 5}
    assert parse_variables(["n=3", "s=abc", 'j={"a": [1]}', "limit"], namespace, {"x": 1}) == {
        "x": 1,
        "n": 3,
        "s": "abc",
        "j": {"a": [1]},
        "limit": 5,
    }
    with pytest.raises(UsageError, match="no notebook variable"):
        parse_variables(["absent"], namespace)
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_variables(["=1"], namespace)


def test_unload_removes_wb_and_magics(shell: Any, ip: Any) -> None:
    shell.run_line_magic("unload_ext", "workbench.notebook")
    assert "wb" not in shell.user_ns
    assert "ck" not in shell.magics_manager.magics["cell"]
    shell.run_line_magic("load_ext", "workbench.notebook")
    assert shell.user_ns["wb"].id == TENANT
