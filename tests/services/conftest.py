"""A real Asset Repository on a free loopback port, over a data directory with two tenants.

``energy`` holds Demo.Energy and the sample entities; ``other`` holds Demo.Energy and one meter
of its own. Tokens: ``ALL_TOKEN`` may use every tenant, ``ENERGY_TOKEN`` only ``energy``,
``OTHER_TOKEN`` only ``other``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

ALL_TOKEN = "all-tenants-token"
ENERGY_TOKEN = "energy-only-token"
OTHER_TOKEN = "other-only-token"
OTHER_METER = "6570a1b2c3d4e5f607182999"


def build_tenants(wb: workbench.Workbench) -> None:
    from workbench.runtime.files import import_runtime_file

    energy = wb.tenants.create("energy")
    energy.ck.import_library(DEMO_LIBRARY)
    import_runtime_file(energy.entities, energy.model, DEMO_RUNTIME)
    other = wb.tenants.create("other")
    other.ck.import_library(DEMO_LIBRARY)
    site = other.entities.create("Demo.Energy/Site", {"name": "Other Site"})
    building = other.entities.create(
        "Demo.Energy/Building", {"name": "Other Hall"}, associations=[("parent", site.rt_id)]
    )
    other.entities.create(
        "Demo.Energy/EnergyMeter",
        {"name": "Other-Meter", "serialNumber": "OT-0001", "state": "Active"},
        rt_id=OTHER_METER,
        associations=[("parent", building.rt_id)],
    )


def authenticator() -> StaticTokenAuthenticator:
    return StaticTokenAuthenticator.from_tokens(
        {ALL_TOKEN: None, ENERGY_TOKEN: ["energy"], OTHER_TOKEN: ["other"]}
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "wb"


@pytest.fixture
def service_wb(data_dir: Path) -> Iterator[workbench.Workbench]:
    with workbench.open(data_dir) as wb:
        build_tenants(wb)
        yield wb


@pytest.fixture
def server(service_wb: workbench.Workbench) -> Iterator[ServiceServer]:
    app = create_app(workbench=service_wb, auth=authenticator())
    with ServiceServer(app) as running:
        yield running


def client_for(server: ServiceServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.fixture
def client(server: ServiceServer) -> Iterator[httpx.Client]:
    with client_for(server, ALL_TOKEN) as http:
        yield http


def graphql(http: httpx.Client, tenant: str, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post(
        f"/tenants/{tenant}/graphql", json={"query": query, "variables": variables or None}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
