"""One set of SDK tests, two clients: the in-process ``Tenant`` and the remote ``RemoteTenant``
talking to a real Asset Repository on a free loopback port (same data either way)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "sdk-test-token"


@pytest.fixture(params=["local", "remote"])
def sdk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Tenant ``energy`` (Demo.Energy + sample entities) through the client under test."""
    from workbench.runtime.files import import_runtime_file

    with workbench.open(tmp_path / "wb") as wb:
        tenant = wb.tenants.create("energy")
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
        if request.param == "local":
            yield tenant
            return
        app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
        with ServiceServer(app) as server:
            remote = workbench.connect(server.url, tenant="energy", token=TOKEN)
            with remote:
                yield remote
