"""Shared data of the communication tests: the example data flow and its pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DATAFLOW = ROOT.parent / "shared" / "examples" / "communication" / "meter-readings-dataflow.yaml"
DATAFLOW_COPY = Path(__file__).with_name("meter-readings-dataflow.yaml")

READ_METER = "6570c0000000000000000011"
UPDATE_METER = "6570c0000000000000000012"
EDGE_ADAPTER = "6570c0000000000000000002"
MESH_ADAPTER = "6570c0000000000000000003"


def dataflow_file() -> Path:
    """The example runtime file (the shared copy when present, else the one kept here)."""
    return DATAFLOW if DATAFLOW.is_file() else DATAFLOW_COPY


def pipeline_definitions() -> dict[str, str]:
    """rtId → PipelineDefinition text of the example's pipelines."""
    document: dict[str, Any] = yaml.safe_load(dataflow_file().read_text())
    out = {}
    for entity in document["entities"]:
        for attribute in entity.get("attributes", []):
            if attribute["id"] == "System.Communication/PipelineDefinition":
                out[entity["rtId"]] = attribute["value"]
    return out


async def redeploy_closes_the_old_connection(
    server_port: int,
    configuration: Callable[[int], dict[str, Any]],
    definition: str,
    changed: str,
) -> None:
    """Deploy ``definition`` on an adapter (its server reached through a TCP proxy), run it
    once, redeploy ``changed``: the old pipeline's connection is closed at the server's end;
    the new one opens its own, closed when the adapter stops."""
    from workbench.communication.adapter import AdapterRuntime
    from workbench.messaging.local import LocalMessageBus
    from workbench.testing.tcp_proxy import tcp_proxy

    pipeline = "65f00000000000000000e002"
    with tcp_proxy("127.0.0.1", server_port) as proxy:
        runtime = AdapterRuntime(
            controller_url="http://127.0.0.1:9",
            tenant_id="t1",
            adapter_rt_id="65f00000000000000000e001",
            tenant=None,
            bus=LocalMessageBus(),
        )

        def push(version: int, text: str) -> dict[str, Any]:
            item = {"rtId": pipeline, "name": "p", "definition": text}
            return {
                "version": version,
                "pipelines": [{**item, "configurations": [configuration(proxy.port)]}],
            }

        async def until_open(count: int, what: str) -> None:
            async with asyncio.timeout(10):
                while proxy.open_connections != count:
                    await asyncio.sleep(0.02)  # the proxy's thread sees the close
            assert proxy.open_connections == count, what

        try:
            assert await runtime.configure(push(1, definition)) == []
            result = await runtime.execute(pipeline, {}, "Manual")
            assert result.status == "Completed", result.error
            await until_open(1, "the first deployment's connection")
            assert await runtime.configure(push(2, changed)) == []
            await until_open(0, "the old connection closed by the redeploy")
            result = await runtime.execute(pipeline, {}, "Manual")
            assert result.status == "Completed", result.error
            await until_open(1, "the new deployment's own connection")
            assert proxy.connections == 2
        finally:
            await runtime.undeploy_all()
        await until_open(0, "the connection closed when the adapter stops")
