from __future__ import annotations

from pathlib import Path

import pytest

import workbench
from tests.conftest import DEMO_LIBRARY
from workbench.errors import Conflict, NotFound, ValidationError


@pytest.mark.parametrize(
    "bad", ["A", "a", "1abc", "acme_corp", "acme corp", "x" * 64, "system", ""]
)
def test_invalid_tenant_ids_are_rejected_with_the_rule(wb: workbench.Workbench, bad: str) -> None:
    with pytest.raises(ValidationError, match=r"tenant id|reserved"):
        wb.tenants.create(bad)
    assert [r.id for r in wb.tenants.list()] == []


def test_create_list_get_delete(wb: workbench.Workbench) -> None:
    wb.tenants.create("acme", description="Acme plant")
    wb.tenants.create("beta")
    assert [r.id for r in wb.tenants.list()] == ["acme", "beta"]
    assert wb.tenants.get("acme").description == "Acme plant"
    with pytest.raises(Conflict, match="already exists"):
        wb.tenants.create("acme")
    with pytest.raises(ValidationError, match="confirm"):
        wb.tenants.delete("acme")
    assert wb.registry.exists("acme")
    wb.tenants.delete("acme", confirm=True)
    assert [r.id for r in wb.tenants.list()] == ["beta"]
    with pytest.raises(NotFound, match="does not exist"):
        wb.tenant("acme")


def test_delete_erases_the_tenant_data(wb: workbench.Workbench) -> None:
    tenant = wb.tenants.create("acme")
    tenant.ck.import_library(DEMO_LIBRARY)
    tenant_dir = wb.registry.tenant_dir("acme")
    assert (tenant_dir / "entities.db").exists()
    wb.tenants.delete("acme", confirm=True)
    assert not tenant_dir.exists()
    again = wb.tenants.create("acme")
    assert "Demo.Energy" not in again.model.libraries


def test_parent_must_exist_and_cannot_be_deleted_before_children(wb: workbench.Workbench) -> None:
    with pytest.raises(NotFound):
        wb.tenants.create("child", parent="nope")
    wb.tenants.create("parent")
    wb.tenants.create("child", parent="parent")
    with pytest.raises(Conflict, match="child"):
        wb.tenants.delete("parent", confirm=True)
    assert wb.registry.exists("parent")


def test_child_sees_parent_libraries_and_inherits_config(wb: workbench.Workbench) -> None:
    parent = wb.tenants.create("parent", config={"site": "Linz", "units": "SI"})
    parent.ck.import_library(DEMO_LIBRARY)
    child = wb.tenants.create("child", parent="parent", config={"units": "imperial"})
    assert "Demo.Energy" in child.model.libraries
    assert "Demo.Energy/EnergyMeter" in child.model.types
    config = child.config
    assert config["site"] == "Linz"
    assert config["units"] == "imperial"
    # backend URLs never cascade: each tenant has its own database
    assert config["entities.url"] != parent.config["entities.url"]
    # data stays apart
    building = child.entities.create("Demo.Energy/Site", {"name": "Child site"})
    assert parent.entities.count("Demo.Energy/Site") == 0
    assert child.entities.get(building.rt_id).attributes["name"] == "Child site"


def test_parent_library_upgrade_is_seen_by_child_without_reopening(
    wb: workbench.Workbench, tmp_path: Path
) -> None:
    parent = wb.tenants.create("parent")
    child = wb.tenants.create("child", parent="parent")
    assert "Demo.Energy" not in child.model.libraries
    parent.ck.import_library(DEMO_LIBRARY)
    assert "Demo.Energy" in child.model.libraries


def test_tenants_on_different_backends_coexist(wb: workbench.Workbench, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "acme.db"
    wb.tenants.create("acme", config={"entities.url": f"sqlite:///{other}"})
    wb.tenants.create("beta")
    wb.tenant("acme").ck.import_library(DEMO_LIBRARY)
    assert other.exists()
    assert "Demo.Energy" not in wb.tenant("beta").model.libraries


def test_unknown_backend_scheme_is_rejected(wb: workbench.Workbench) -> None:
    with pytest.raises(ValidationError, match="unknown scheme"):
        wb.tenants.create("acme", config={"entities.url": "postgres://x/y"})
    assert not wb.registry.exists("acme")


def test_registry_survives_reopening(tmp_path: Path) -> None:
    with workbench.open(tmp_path) as first:
        first.tenants.create("acme", config={"k": "v"})
    with workbench.open(tmp_path) as second:
        assert second.tenants.get("acme").config["k"] == "v"
