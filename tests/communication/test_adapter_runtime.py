"""The adapter runtime without a controller: HTTP triggers, data events between two adapters
over a shared bus, trigger errors reported per pipeline."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.communication.conftest import (
    EDGE_ADAPTER,
    MESH_ADAPTER,
    READ_METER,
    dataflow_file,
)
from tests.conftest import METER_1
from workbench.communication.adapter import AdapterRuntime
from workbench.messaging.local import LocalMessageBus
from workbench.runtime.files import import_runtime_file
from workbench.services.communication_controller.config import adapter_configuration
from workbench.testing.http import free_port

HTTP_PIPELINE = f"""
triggers:
  - type: FromHttpRequest@1
    method: POST
    path: /readings
transformations:
  - type: CreateUpdateInfo@1
    ckTypeId: Demo.Energy/EnergyMeter
    rtId: {METER_1}
    targetPath: $.updates
    targetValueKind: Array
    attributeUpdates:
      - {{attributeName: Voltage, attributeValueType: Double, valuePath: $.body.v}}
  - type: ApplyChanges@1
    path: $.updates
    targetPath: $.result
"""


def _runtime(tenant: Any, rt_id: str, bus: Any, **kwargs: Any) -> AdapterRuntime:
    return AdapterRuntime(
        controller_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: runs offline
        tenant_id=tenant.id,
        adapter_rt_id=rt_id,
        tenant=tenant,
        bus=bus,
        **kwargs,
    )


def test_http_trigger_writes_through_the_runtime_service(demo: Any) -> None:
    port = free_port()

    async def main() -> Any:
        runtime = _runtime(demo, "6570c00000000000000000ff", LocalMessageBus(), http_port=port)
        stop = asyncio.Event()
        running = asyncio.create_task(runtime.run(stop))
        pipeline = {
            "rtId": "6570c00000000000000000fe",
            "name": "http in",
            "definition": HTTP_PIPELINE,
        }
        errors = await runtime.configure({"version": 1, "pipelines": [pipeline]})
        assert errors == []
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    answer = await http.post(
                        f"http://127.0.0.1:{port}/{demo.id}/readings", json={"v": 238.5}
                    )
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            missing = await http.get(f"http://127.0.0.1:{port}/{demo.id}/nothing")
        stop.set()
        await running
        return answer, missing

    answer, missing = asyncio.run(main())
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"inserted": 0, "updated": 1, "deleted": 0}
    assert demo.entities.get(METER_1)["voltage"] == 238.5
    assert missing.status_code == 404
    assert "served: POST /energy/readings" in missing.json()["error"]


def test_http_trigger_without_port_is_a_trigger_error(demo: Any) -> None:
    async def main() -> list[dict[str, Any]]:
        runtime = _runtime(demo, "6570c00000000000000000ff", LocalMessageBus())
        pipeline = {
            "rtId": "6570c00000000000000000fe",
            "name": "http in",
            "definition": HTTP_PIPELINE,
        }
        errors = await runtime.configure({"version": 1, "pipelines": [pipeline]})
        await runtime.undeploy_all()
        return errors

    errors = asyncio.run(main())
    assert errors[0]["category"] == "trigger"
    assert "--http-port" in errors[0]["message"]


def test_data_events_flow_between_two_adapters(demo: Any) -> None:
    import_runtime_file(demo.entities, demo.model, dataflow_file())

    async def main() -> None:
        bus = LocalMessageBus()
        edge, mesh = _runtime(demo, EDGE_ADAPTER, bus), _runtime(demo, MESH_ADAPTER, bus)
        assert (
            await mesh.configure({"version": 1, **adapter_configuration(demo, MESH_ADAPTER)}) == []
        )
        assert (
            await edge.configure({"version": 1, **adapter_configuration(demo, EDGE_ADAPTER)}) == []
        )
        demo.entities.update(METER_1, {"voltage": 0.0})
        result = await edge.execute(READ_METER, {}, "Manual")
        assert result.status == "Completed", result.error
        for _ in range(200):
            if 225 <= (demo.entities.get(METER_1).attributes.get("voltage") or 0) <= 235:
                break
            await asyncio.sleep(0.05)
        await edge.undeploy_all()
        await mesh.undeploy_all()

    asyncio.run(main())
    assert 225 <= demo.entities.get(METER_1)["voltage"] <= 235
