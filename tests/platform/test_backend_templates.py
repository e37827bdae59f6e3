"""The settings a scaled deployment sets: new tenants' backend URLs from templates and the
system tenant's store from ``WORKBENCH_SYSTEM_ENTITIES_URL`` (here on embedded files)."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench
from workbench.tenancy.registry import ENTITIES_URL, STREAMS_URL


def test_new_tenants_get_their_backends_from_the_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("WORKBENCH_TENANT_ENTITIES_URL", f"sqlite:///{shared}/wb_{{tenant}}.db")
    monkeypatch.setenv("WORKBENCH_TENANT_STREAMS_URL", f"duckdb:///{shared}/{{tenant_sql}}.duckdb")
    with workbench.open(tmp_path / "home") as wb:
        wb.tenants.create("plant-a")
        record = wb.registry.get("plant-a")
        assert record.config[ENTITIES_URL] == f"sqlite:///{shared}/wb_plant-a.db"
        assert record.config[STREAMS_URL] == f"duckdb:///{shared}/plant_a.duckdb"
        # an explicit URL still wins over the template
        own = f"sqlite:///{tmp_path}/own.db"
        wb.tenants.create("plant-b", config={ENTITIES_URL: own})
        assert wb.registry.get("plant-b").config[ENTITIES_URL] == own
    assert (shared / "wb_plant-a.db").is_file()


def test_without_templates_tenants_stay_embedded(tmp_path: Path) -> None:
    with workbench.open(tmp_path / "home") as wb:
        wb.tenants.create("plant-a")
        record = wb.registry.get("plant-a")
    assert record.config[ENTITIES_URL].startswith(f"sqlite:///{tmp_path / 'home'}")
    assert record.config[STREAMS_URL].endswith("streams.duckdb")


def test_the_system_store_follows_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "elsewhere" / "system.db"
    system.parent.mkdir()
    monkeypatch.setenv("WORKBENCH_SYSTEM_ENTITIES_URL", f"sqlite:///{system}")
    with workbench.open(tmp_path / "one") as wb:
        wb.tenants.create("plant-a")
    # a second data directory on the same system store sees the same registry (two replicas)
    with workbench.open(tmp_path / "two") as wb:
        assert wb.registry.exists("plant-a")
    assert not (tmp_path / "one" / "system" / "entities.db").exists()
