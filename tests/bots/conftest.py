"""A real platform for the bot tests: Identity, Asset Repository and Bot Service on free
loopback ports (uvicorn), over one data directory with tenant ``energy`` (Demo.Energy and the
sample entities). Bot runs are real processes (runner + kernel) that reach the Asset Repository
over HTTP with their bot's own client-credentials token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from workbench.bots.credentials import BotCredentials
from workbench.bots.settings import BotServiceSettings
from workbench.client.local import Workbench, open_workbench
from workbench.identity.verification import JwtVerifier, RemoteJwks
from workbench.services.asset_repository.app import create_app as asset_repository_app
from workbench.services.auth import JwtAuthenticator
from workbench.services.bot_service.app import create_app as bot_service_app
from workbench.services.identity.app import create_app as identity_app
from workbench.settings import Settings
from workbench.testing.http import DeferredApp, ServiceServer
from workbench.testing.smtp import Mailbox

TENANT = "energy"


@dataclass
class Platform:
    home: Path
    workbench: Workbench
    identity_url: str
    api_url: str
    bots_url: str
    author_token: str
    service: Any
    tenant: str = TENANT

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.bots_url,
            headers={"Authorization": f"Bearer {token or self.author_token}"},
            timeout=600,
        )

    def wait_for(self, check: Callable[[], Any], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"not within {timeout} s")


def client_token(identity_url: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{identity_url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def start_platform(
    home: Path, *, tenant_id: str = TENANT, bus_url: str = "", **bot_options: Any
) -> Iterator[Platform]:
    """The platform on ``home`` with tenant ``tenant_id``; ``bus_url``: the message bus the
    Asset Repository publishes entity events on and the Bot Service follows (default: a bus
    of each service's own)."""
    from workbench.identity.directory import Directory
    from workbench.runtime.files import import_runtime_file

    workbench = open_workbench(home)
    tenant = workbench.tenants.create(tenant_id)
    tenant.ck.import_library(DEMO_LIBRARY)
    import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
    deferred = DeferredApp()
    identity = ServiceServer(deferred)
    settings = Settings(home=home, identity_issuer=identity.url, admin_password="admin-pw-12345")
    if bus_url:
        settings = settings.model_copy(update={"bus_url": bus_url})
    deferred.app = identity_app(settings, workbench=workbench, announce=False)
    identity.start()
    verifier = JwtVerifier(
        identity.url, settings.identity_audience, RemoteJwks(identity.url + "/jwks")
    )
    auth = JwtAuthenticator(verifier)
    assets = ServiceServer(asset_repository_app(settings, workbench=workbench, auth=auth)).start()
    _, secret = Directory.for_workbench(workbench).create_client(
        tenant_id,
        "author",
        grant_types=["client_credentials"],
        scopes=["workbench_api"],
        roles=["Development", "DataModelManagement", "StreamDataWriter"],
    )
    assert secret is not None
    bot_settings = BotServiceSettings(tick_s=0.1, **bot_options)
    credentials = BotCredentials(workbench, api_url=assets.url, token_url=f"{identity.url}/token")
    app = bot_service_app(
        settings, workbench=workbench, auth=auth, bot_settings=bot_settings, credentials=credentials
    )
    bots = ServiceServer(app).start()
    platform = Platform(
        home,
        workbench,
        identity.url,
        assets.url,
        bots.url,
        client_token(identity.url, "author", secret),
        app.state.service,
        tenant_id,
    )
    try:
        yield platform
    finally:
        bots.stop()
        assets.stop()
        identity.stop()
        workbench.close()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    mailbox.controller.start()
    try:
        yield mailbox
    finally:
        mailbox.controller.stop()


@pytest.fixture
def platform(tmp_path: Path, smtp: Mailbox) -> Iterator[Platform]:
    yield from start_platform(tmp_path / "wb", smtp_url=smtp.url)


def bot_notebook(cells: list[str], parameters: str = "", **bot: Any) -> dict[str, Any]:
    """A bot notebook as JSON (``bot``: its metadata.workbench.bot settings)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    if bot:
        nb.metadata["workbench"] = {"bot": bot}
    if parameters:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    return dict(nb)


def promote(platform: Platform, name: str, notebook: dict[str, Any], **options: Any) -> Any:
    with platform.http() as http:
        response = http.post(
            f"/tenants/{platform.tenant}/promotions",
            json={"notebook": notebook, "kind": "bot", "name": name, "options": options},
        )
    assert response.status_code == 200, response.text
    return response.json()
