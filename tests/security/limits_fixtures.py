"""A real Asset Repository on loopback for the limit and fuzz tests.

``fuzz_server``: one per module, with the default limits. ``limited(**settings)`` starts one
over the two demo tenants of tests/services (``energy`` and ``other``) with
``WORKBENCH_<NAME>`` set from ``settings`` while the app is built (the limits are read then)
and yields ``(server, client)``; the client carries a token for every tenant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from tests.services.conftest import ALL_TOKEN, authenticator, build_tenants
from workbench.services import create_app
from workbench.testing.http import ServiceServer

__all__ = ["ALL_TOKEN", "Limited", "fuzz_server", "healthy", "limited", "meter_id"]

Limited = Callable[..., Any]


def healthy(server: ServiceServer) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def meter_id(wb: workbench.Workbench, tenant: str = "energy") -> str:
    return wb.tenant(tenant).entities.find("Demo.Energy/EnergyMeter").items[0].rt_id


@contextmanager
def _environment(settings: dict[str, Any]) -> Iterator[None]:
    names = {f"WORKBENCH_{key.upper()}": str(value) for key, value in settings.items()}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def limited_wb(tmp_path: Path) -> Iterator[workbench.Workbench]:
    with workbench.open(tmp_path / "wb") as wb:
        build_tenants(wb)
        yield wb


@pytest.fixture
def limited(limited_wb: workbench.Workbench) -> Limited:
    """``with limited(graphql_max_cost=100) as (server, client): ...``"""

    @contextmanager
    def start(**settings: Any) -> Iterator[tuple[ServiceServer, httpx.Client]]:
        with _environment(settings):
            app = create_app(workbench=limited_wb, auth=authenticator())
        with ServiceServer(app) as server:
            headers = {"Authorization": f"Bearer {ALL_TOKEN}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                yield server, client

    return start


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceServer]:
    """An Asset Repository over the two demo tenants with the default limits (one per module)."""
    with workbench.open(tmp_path_factory.mktemp("fuzz-ar") / "wb") as wb:
        build_tenants(wb)
        with ServiceServer(create_app(workbench=wb, auth=authenticator())) as server:
            yield server
