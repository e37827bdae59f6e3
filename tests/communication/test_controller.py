"""The Communication Controller with an adapter runtime (in process, real HTTP and WebSocket):
registration, configuration, executions, the Offline deadline, and tenant isolation with the
same token checks as the other services."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

import workbench
from workbench.communication.adapter import AdapterRuntime
from workbench.messaging.local import LocalMessageBus
from workbench.services.auth import StaticTokenAuthenticator
from workbench.services.communication_controller.app import create_app
from workbench.testing.http import ServiceServer

TOKEN_A = "token-of-tenant-a"
TOKEN_B = "token-of-tenant-b"
PIPELINE = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SetPrimitiveValue@1
    targetPath: $.answer
    value: 42
"""


def _setup(tenant: Any) -> tuple[str, str]:
    adapter = tenant.entities.create("System.Communication/Adapter", {"name": f"{tenant.id}-1"})
    flow = tenant.entities.create("System.Communication/DataFlow", {"name": "flow"})
    pipeline = tenant.entities.create(
        "System.Communication/Pipeline",
        {
            "name": f"{tenant.id} pipeline",
            "enabled": True,
            "pipelineDefinition": PIPELINE,
            "isDebuggingEnabled": True,
        },
        associations=[
            ("System/ParentChild", flow.rt_id),
            ("System.Communication/Executes", adapter.rt_id),
        ],
    )
    return adapter.rt_id, pipeline.rt_id


@pytest.fixture
def platform(tmp_path: Any) -> Iterator[dict[str, Any]]:
    with workbench.open(tmp_path / "wb") as wb:
        bus = LocalMessageBus()
        auth = StaticTokenAuthenticator.from_tokens({TOKEN_A: ["plant-a"], TOKEN_B: ["plant-b"]})
        # the app first: tenants opened after it publish their entity events to its bus
        app = create_app(
            workbench=wb, auth=auth, bus=bus, heartbeat_seconds=0.2, offline_after_seconds=1.0
        )
        ids = {name: _setup(wb.tenants.create(name)) for name in ("plant-a", "plant-b")}
        with ServiceServer(app) as server:
            yield {"wb": wb, "url": server.url, "ws": server.ws_url, "ids": ids, "bus": bus}


class _RunningAdapter:
    """An AdapterRuntime on a thread of its own (its own event loop)."""

    def __init__(self, url: str, tenant: Any, adapter_rt_id: str, token: str) -> None:
        self.runtime: AdapterRuntime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._args = (url, tenant, adapter_rt_id, token)
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        async def main() -> None:
            url, tenant, rt_id, token = self._args
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.runtime = AdapterRuntime(
                controller_url=url,
                tenant_id=tenant.id,
                adapter_rt_id=rt_id,
                tenant=tenant,
                bus=LocalMessageBus(),
                token=token,
            )
            await self.runtime.run(self._stop)

        asyncio.run(main())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=10)


def _wait(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_register_configure_execute_and_go_offline(platform: dict[str, Any]) -> None:
    wb, url = platform["wb"], platform["url"]
    tenant = wb.tenant("plant-a")
    adapter_id, pipeline_id = platform["ids"]["plant-a"]
    running = _RunningAdapter(url, tenant, adapter_id, TOKEN_A)
    try:
        _wait(
            lambda: (
                tenant.entities.get(adapter_id).attributes.get("configurationState") == "Configured"
            ),
            "Configured",
        )
        adapter = tenant.entities.get(adapter_id)
        assert adapter["communicationState"] == "Online"
        assert tenant.entities.get(pipeline_id)["deploymentState"] == "Deployed"
        assert running.runtime is not None
        assert list(running.runtime.pipelines) == [pipeline_id]  # only its tenant's pipeline
        headers = {"Authorization": f"Bearer {TOKEN_A}"}
        result = httpx.post(
            f"{url}/tenants/plant-a/pipelines/{pipeline_id}/execute",
            params={"wait": 10},
            json={"input": {"q": 1}},
            headers=headers,
            timeout=15,
        ).json()
        assert result["status"] == "Completed", result
        assert result["output"] == {"q": 1, "answer": 42}
        executions = _wait(
            lambda: httpx.get(
                f"{url}/tenants/plant-a/pipelines/{pipeline_id}/executions", headers=headers
            ).json(),
            "a recorded execution",
        )
        assert executions[0]["triggerType"] == "Manual"
        assert '"answer": 42' in executions[0]["outputData"]  # debugging keeps the output
        statistics = tenant.entities.navigate(pipeline_id, "statistics")[0]
        assert statistics["successCountLastHour"] == 1
        listed = httpx.get(f"{url}/tenants/plant-a/adapters", headers=headers).json()
        assert [(a["rtId"], a["connected"]) for a in listed] == [(adapter_id, True)]
        # a change of the pipeline reaches the running adapter
        tenant.entities.update(pipeline_id, {"pipelineDefinition": PIPELINE.replace("42", "43")})
        _wait(
            lambda: running.runtime is not None and running.runtime.configuration_version == 2,
            "the new configuration",
        )
        result = httpx.post(
            f"{url}/tenants/plant-a/pipelines/{pipeline_id}/execute",
            params={"wait": 10},
            json={},
            headers=headers,
            timeout=15,
        ).json()
        assert result["output"]["answer"] == 43
    finally:
        running.stop()
    stopped = time.monotonic()
    _wait(
        lambda: tenant.entities.get(adapter_id).attributes.get("communicationState") == "Offline",
        "Offline",
    )
    assert time.monotonic() - stopped < 3
    metrics = httpx.get(f"{url}/metrics").text
    assert "workbench_adapters_online 0.0" in metrics


def test_an_adapter_never_gets_another_tenants_configuration(platform: dict[str, Any]) -> None:
    ws, url = platform["ws"], platform["url"]
    b_adapter, b_pipeline = platform["ids"]["plant-b"]

    async def attempts() -> None:
        # tenant a's token on tenant b's hub: refused at the handshake
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                f"{ws}/tenants/plant-b/adapters/hub",
                additional_headers={"Authorization": f"Bearer {TOKEN_A}"},
            ):
                pass
        assert refused.value.response.status_code == 403
        # no token at all
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{ws}/tenants/plant-a/adapters/hub"):
                pass
        # its own hub, but tenant b's adapter id: no such adapter in tenant a
        async with websockets.connect(
            f"{ws}/tenants/plant-a/adapters/hub",
            additional_headers={"Authorization": f"Bearer {TOKEN_A}"},
        ) as conn:
            await conn.send(json.dumps({"type": "register", "adapterRtId": b_adapter}))
            answer = await conn.recv()
            assert "has no System.Communication/Adapter" in str(answer)

    asyncio.run(attempts())
    forbidden = httpx.post(
        f"{url}/tenants/plant-b/pipelines/{b_pipeline}/execute",
        json={},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    )
    assert forbidden.status_code == 403
    listed = httpx.get(
        f"{url}/tenants/plant-b/adapters", headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert listed.status_code == 403


def test_dataflow_status_and_trigger_reload(platform: dict[str, Any]) -> None:
    url, wb = platform["url"], platform["wb"]
    tenant = wb.tenant("plant-a")
    adapter_id, pipeline_id = platform["ids"]["plant-a"]
    flow_id = tenant.entities.navigate(pipeline_id, "parent")[0].rt_id
    tenant.entities.create(
        "System.Communication/PipelineTrigger",
        {"name": "every minute", "enabled": True, "cronExpression": "0 * * * * ?"},
        associations=[
            ("System/ParentChild", flow_id),
            ("System.Communication/Triggers", pipeline_id),
        ],
    )
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    flow = httpx.get(f"{url}/tenants/plant-a/dataflows/{flow_id}", headers=headers).json()
    assert [p["rtId"] for p in flow["pipelines"]] == [pipeline_id]
    assert flow["pipelines"][0]["adapterRtId"] == adapter_id
    assert flow["triggers"][0]["cronExpression"] == "0 * * * * ?"
    deployed = httpx.post(
        f"{url}/tenants/plant-a/dataflows/{flow_id}/deploy", headers=headers
    ).json()
    assert deployed == {"rtId": flow_id, "pushedTo": [], "notConnected": [adapter_id]}
    schedules = httpx.post(f"{url}/tenants/plant-a/triggers/deploy", headers=headers).json()
    assert schedules[0]["pipelineRtId"] == pipeline_id
    assert schedules[0]["nextFire"].endswith(":00+00:00")


def test_validate_and_nodes_routes(platform: dict[str, Any]) -> None:
    url = platform["url"]
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    answer = httpx.post(
        f"{url}/tenants/plant-a/pipelines/validate",
        headers=headers,
        json={"definition": "triggers: []\nnodes: []\n"},
    ).json()
    assert answer["valid"] is False
    assert any("unknown root key 'nodes'" in p["message"] for p in answer["problems"])
    nodes = httpx.get(f"{url}/tenants/plant-a/nodes", headers=headers).json()
    assert "CreateUpdateInfo@1" in nodes
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_an_edge_adapter_reports_its_last_synced_sequence_number(
    platform: dict[str, Any],
) -> None:
    ws = platform["ws"]
    tenant = platform["wb"].tenant("plant-a")
    adapter_id, _ = platform["ids"]["plant-a"]

    async def edge() -> None:
        async with websockets.connect(
            f"{ws}/tenants/plant-a/adapters/hub",
            additional_headers={"Authorization": f"Bearer {TOKEN_A}"},
        ) as conn:
            register = {"type": "register", "adapterRtId": adapter_id, "nodes": {}}
            await conn.send(json.dumps({**register, "lastSyncedSequenceNumber": 7}))
            assert json.loads(await conn.recv())["type"] == "registered"
            await asyncio.to_thread(
                _wait,
                lambda: tenant.entities.get(adapter_id)["lastSyncedSequenceNumber"] == 7,
                "LastSyncedSequenceNumber 7 from register",
            )
            await conn.send(json.dumps({"type": "heartbeat", "lastSyncedSequenceNumber": 12}))
            await asyncio.to_thread(
                _wait,
                lambda: tenant.entities.get(adapter_id)["lastSyncedSequenceNumber"] == 12,
                "LastSyncedSequenceNumber 12 from a heartbeat",
            )

    asyncio.run(edge())


def test_the_adapter_gets_the_secrets_of_the_entities_it_uses(platform: dict[str, Any]) -> None:
    wb, url = platform["wb"], platform["url"]
    tenant = wb.tenant("plant-a")
    adapter_id, pipeline_id = platform["ids"]["plant-a"]
    broker = tenant.entities.create(
        "System.Communication/MqttBroker",
        {"name": "plantBroker", "host": "127.0.0.1", "password": "broker-pass-1"},
    )
    tenant.entities.link(pipeline_id, "System.Communication/Uses", broker.rt_id)
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    running = _RunningAdapter(url, tenant, adapter_id, TOKEN_A)

    def received() -> Any:
        runtime = running.runtime
        deployed = runtime.pipelines.get(pipeline_id) if runtime else None
        return deployed.configurations if deployed and deployed.configurations else None

    try:
        assert _wait(received, "the configuration")[0]["password"] == "broker-pass-1"
        # every other answer masks it: the adapter's REST view, the entity
        shown = httpx.get(f"{url}/tenants/plant-a/adapters/{adapter_id}", headers=headers)
        assert "broker-pass-1" not in shown.text
        assert shown.json()["configuration"]["pipelines"][0]["configurations"][0]["password"] == (
            "***"
        )
        assert tenant.entities.get(broker.rt_id)["password"] == "***"
        # a new secret reaches the running adapter without a restart
        tenant.entities.update(broker.rt_id, {"password": "broker-pass-2"})
        _wait(
            lambda: (received() or [{}])[0].get("password") == "broker-pass-2",
            "the new secret",
        )
    finally:
        running.stop()
