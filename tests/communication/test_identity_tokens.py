"""Adapters authenticate with client-credentials tokens from a real Identity service (JWTs
checked against its JWKS) and are tenant-checked at the hub; their writes go through the Asset
Repository with the same token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.communication.test_controller import _RunningAdapter, _setup
from workbench.client.local import open_workbench
from workbench.client.remote import RemoteTenant
from workbench.identity.directory import Directory
from workbench.identity.verification import JwtVerifier, RemoteJwks
from workbench.messaging.local import LocalMessageBus
from workbench.services.asset_repository.app import create_app as asset_repository_app
from workbench.services.auth import JwtAuthenticator
from workbench.services.communication_controller.app import create_app as controller_app
from workbench.services.identity.app import create_app as identity_app
from workbench.settings import Settings
from workbench.testing.http import DeferredApp, ServiceServer

WRITING_PIPELINE = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: CreateUpdateInfo@1
    ckTypeId: System.Communication/Adapter
    rtId: %s
    targetPath: $.updates
    targetValueKind: Array
    attributeUpdates:
      - {attributeName: StatusMessage, attributeValueType: String, value: written by the adapter}
  - type: ApplyChanges@1
    path: $.updates
"""


def _token(identity_url: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{identity_url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    home = tmp_path / "wb"
    workbench = open_workbench(home)
    deferred = DeferredApp()
    identity = ServiceServer(deferred)
    settings = Settings(home=home, identity_issuer=identity.url, admin_password="admin-pw-12345")
    deferred.app = identity_app(settings, workbench=workbench, announce=False)
    identity.start()
    verifier = JwtVerifier(
        identity.url, settings.identity_audience, RemoteJwks(identity.url + "/jwks")
    )
    auth = JwtAuthenticator(verifier)
    controller = controller_app(
        settings,
        workbench=workbench,
        auth=auth,
        bus=LocalMessageBus(),
        heartbeat_seconds=0.2,
        offline_after_seconds=1.0,
    )
    hub = ServiceServer(controller).start()
    assets = ServiceServer(asset_repository_app(settings, workbench=workbench, auth=auth)).start()
    tokens, ids = {}, {}
    directory = Directory.for_workbench(workbench)
    for name in ("plant-a", "plant-b"):
        ids[name] = _setup(workbench.tenants.create(name))
        _, secret = directory.create_client(
            name,
            f"adapter-{name}",
            grant_types=["client_credentials"],
            scopes=["workbench_api"],
            roles=["Development"],
        )
        assert secret is not None
        tokens[name] = _token(identity.url, f"adapter-{name}", secret)
    try:
        yield {"workbench": workbench, "hub": hub, "assets": assets, "tokens": tokens, "ids": ids}
    finally:
        assets.stop()
        hub.stop()
        identity.stop()
        workbench.close()


def test_client_credentials_adapter_registers_and_writes(platform: dict[str, Any]) -> None:
    hub, assets, tokens = platform["hub"], platform["assets"], platform["tokens"]
    adapter_id, pipeline_id = platform["ids"]["plant-a"]
    remote = RemoteTenant(assets.url, "plant-a", token=tokens["plant-a"])
    running = _RunningAdapter(hub.url, remote, adapter_id, tokens["plant-a"])
    local = platform["workbench"].tenant("plant-a")
    local.entities.update(pipeline_id, {"pipelineDefinition": WRITING_PIPELINE % adapter_id})
    try:
        deadline = time.monotonic() + 20
        while local.entities.get(adapter_id).attributes.get("configurationState") != "Configured":
            assert time.monotonic() < deadline, "the adapter was not configured"
            time.sleep(0.05)
        headers = {"Authorization": f"Bearer {tokens['plant-a']}"}
        result = httpx.post(
            f"{hub.url}/tenants/plant-a/pipelines/{pipeline_id}/execute",
            params={"wait": 10},
            json={},
            headers=headers,
            timeout=20,
        ).json()
        assert result["status"] == "Completed", result
        # the write went through the Asset Repository with the adapter's token
        assert local.entities.get(adapter_id)["statusMessage"] == "written by the adapter"
        # tenant b's client token is refused on tenant a's hub and routes
        other = {"Authorization": f"Bearer {tokens['plant-b']}"}
        refused = httpx.post(
            f"{hub.url}/tenants/plant-a/pipelines/{pipeline_id}/execute", json={}, headers=other
        )
        assert refused.status_code == 403

        async def connect_as_b() -> int:
            try:
                async with websockets.connect(
                    f"{hub.ws_url}/tenants/plant-a/adapters/hub", additional_headers=other
                ):
                    return 101
            except websockets.InvalidStatus as exc:
                return exc.response.status_code

        assert asyncio.run(connect_as_b()) == 403
    finally:
        running.stop()
        remote.close()
