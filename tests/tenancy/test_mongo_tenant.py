"""A tenant whose entities live in MongoDB (FerretDB in CI) beside an embedded one."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1
from workbench.runtime.files import import_runtime_file
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


@pytest.fixture
def mongo_url() -> str:
    base = urlsplit(
        require_server_url(
            "WORKBENCH_TEST_MONGODB_URL", "MongoDB wire-protocol server (MongoDB or FerretDB)"
        )
    )
    return urlunsplit(base._replace(path=f"/wbtenant_{uuid.uuid4().hex[:12]}"))


def test_mongo_and_sqlite_tenants_coexist(wb: workbench.Workbench, mongo_url: str) -> None:
    remote = wb.tenants.create("plant-mongo", config={"entities.url": mongo_url})
    local = wb.tenants.create("plant-local")
    try:
        for tenant in (remote, local):
            tenant.ck.import_library(DEMO_LIBRARY)
            import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
        remote.entities.update(METER_1, {"voltage": 199.0})
        assert remote.entities.get(METER_1)["voltage"] == 199.0
        assert local.entities.get(METER_1)["voltage"] == 231.5
        page: Any = remote.entities.find(
            "Demo.Energy/Meter", where=["parent->name EQUALS 'Hall A'"], sort=["serialNumber"]
        )
        assert [e["serialNumber"] for e in page] == ["EM-0001", "EM-0002"]
        with pytest.raises(workbench.Conflict):
            remote.entities.create(
                "Demo.Energy/EnergyMeter",
                {"name": "dup", "serialNumber": "EM-0001", "state": "Active"},
                associations=[("parent", "6560a1b2c3d4e5f607182931")],
            )
        assert remote.entities.count("Demo.Energy/EnergyMeter") == 2
    finally:
        wb.tenants.delete("plant-mongo", confirm=True)
        wb.tenants.delete("plant-local", confirm=True)
