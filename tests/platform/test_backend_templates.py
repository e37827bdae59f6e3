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


@pytest.mark.integration
def test_two_replicas_share_the_system_store_and_tenants_on_mongodb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What N Asset Repository replicas rely on: two data directories (two pods) with the
    system store and the tenant template on one MongoDB see the same tenants and entities."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import pymongo

    from tests.conftest import DEMO_LIBRARY
    from workbench.testing.servers import require_server_url

    base = urlsplit(
        require_server_url(
            "WORKBENCH_TEST_MONGODB_URL", "MongoDB wire-protocol server (MongoDB or FerretDB)"
        )
    )
    run = uuid.uuid4().hex[:8]
    system = urlunsplit(base._replace(path=f"/wbsys_{run}"))
    monkeypatch.setenv("WORKBENCH_SYSTEM_ENTITIES_URL", system)
    monkeypatch.setenv(
        "WORKBENCH_TENANT_ENTITIES_URL", urlunsplit(base._replace(path=f"/wb_{run}_{{tenant}}"))
    )
    try:
        with workbench.open(tmp_path / "pod-a") as a, workbench.open(tmp_path / "pod-b") as b:
            tenant = a.tenants.create("plant-a")
            tenant.ck.import_library(DEMO_LIBRARY)
            created = tenant.entities.create("Demo.Energy/Site", {"name": "Linz"})
            assert b.registry.get("plant-a").config[ENTITIES_URL].endswith(f"wb_{run}_plant-a")
            assert b.tenant("plant-a").entities.get(created.rt_id)["name"] == "Linz"
            a.tenants.delete("plant-a", confirm=True)
            assert not b.registry.exists("plant-a")
    finally:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            urlunsplit(base._replace(path="/")), serverSelectionTimeoutMS=5000
        )
        client.drop_database(f"wbsys_{run}")
        client.close()
