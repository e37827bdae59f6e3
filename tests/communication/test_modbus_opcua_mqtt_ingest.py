"""Issue 14's "done when", in one process: a pipeline polls a Modbus register and an OPC UA node
every second and another takes an MQTT topic as it arrives; both map the values to stream
points of an energy meter and the poll also updates the meter entity (``ApplyChanges@1``); the
values answer in the tenant's GraphQL schema (``streamData { tsDemoEnergyEnergyMeter }`` and
``runtime { rtDemoEnergyEnergyMeter }``) within a second of the device having them (the poll:
within its interval plus a second). Real peers: pymodbus, asyncua, mosquitto."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.communication.test_modbus import Plc, plc  # noqa: F401 - fixture
from tests.communication.test_mqtt import Broker, broker  # noqa: F401 - fixture
from tests.communication.test_opcua import Plant, plant  # noqa: F401 - fixture
from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment

pytestmark = pytest.mark.anyio

METER = "Demo.Energy/EnergyMeter"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def meter() -> Iterator[tuple[Any, str]]:
    from workbench.bench.streams import _tenant

    with _tenant(None, 1) as (tenant, rt_ids, _home):
        yield tenant, rt_ids[0]


POLL = """
triggers: [{type: FromPolling@1, interval: "00:00:01"}]
transformations:
  - type: ReadModbusRegister@1
    serverConfigurations:
      - server: plc1
        mappings: [{register: 16, valueType: Float32, targetPath: $.voltage}]
  - type: ReadOpcUaNodes@1
    server: plantOpc
    nodes: [{nodeId: "ns=2;s=Line1.Temperature", targetPath: $.current}]
  - type: CreateUpdateInfo@1
    ckTypeId: Demo.Energy/EnergyMeter
    rtId: RTID
    attributeUpdates:
      - {attributeName: voltage, attributeValueType: Double, valuePath: $.voltage}
      - {attributeName: current, attributeValueType: Double, valuePath: $.current}
    targetPath: $.updates
    targetValueKind: Array
  - type: SaveStreamDataInArchive@1
    path: $.updates
  - type: ApplyChanges@1
    path: $.updates
"""

ON_MESSAGE = """
triggers:
  - type: FromMqtt@1
    broker: plantBroker
    topics: [{topic: "meters/+/power", qos: 1}]
transformations:
  - type: CreateUpdateInfo@1
    ckTypeId: Demo.Energy/EnergyMeter
    rtId: RTID
    timestampPath: $.payload.at
    attributeUpdates:
      - {attributeName: activePower, attributeValueType: Double, valuePath: $.payload.kW}
    targetPath: $.updates
    targetValueKind: Array
  - type: SaveStreamDataInArchive@1
    path: $.updates
"""


class Host:
    tenant_id = "bench"

    def __init__(self, configurations: list[dict[str, Any]]) -> None:
        self.configurations = configurations


async def _wait_for(check: Any, seconds: float) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        if await asyncio.to_thread(check):
            return time.perf_counter() - began
        await asyncio.sleep(0.02)
    raise AssertionError("not queryable in time")


async def test_modbus_opcua_and_mqtt_values_become_stream_points(
    meter: tuple[Any, str],
    plc: Plc,  # noqa: F811
    plant: Plant,  # noqa: F811
    broker: Broker,  # noqa: F811
) -> None:
    import aiomqtt

    tenant, rt_id = meter
    configurations = [plc.configuration(), plant.configuration(), broker.configuration()]
    env = ExecutionEnvironment(configurations=configurations, tenant=tenant, tenant_id=tenant.id)
    failures: list[str] = []
    tasks = []
    for definition in (POLL, ON_MESSAGE):
        pipeline = build_pipeline(definition.replace("RTID", rt_id))

        async def fire(data: Any, trigger_type: str, pipeline: Any = pipeline) -> None:
            result = await pipeline.execute(data, env)
            if result.error:
                failures.append(result.error)

        host: Any = Host(configurations)
        tasks.append(asyncio.create_task(pipeline.triggers[0].start(host, fire)))
    since = datetime.now(UTC) - timedelta(minutes=1)

    def rows() -> list[dict[str, Any]]:
        """The meter's stream points as the tenant's GraphQL schema answers them."""
        until = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        data = tenant.graphql(
            "query($from: DateTime!, $to: DateTime!) { streamData { tsDemoEnergyEnergyMeter("
            "from: $from, to: $to, first: 1000) { items { rtId timeStamp voltage current "
            "activePower } } } }",
            {"from": since.isoformat(), "to": until},
            raw=True,
        )
        return list(data["streamData"]["tsDemoEnergyEnergyMeter"]["items"])

    def entity() -> dict[str, Any]:
        data = tenant.graphql(
            "{ runtime { rtDemoEnergyEnergyMeter { items { rtId voltage current } } } }", raw=True
        )
        items = data["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
        return next(item for item in items if item["rtId"] == rt_id)

    try:
        words = struct.pack(">f", 231.5)
        await plc.set(
            1, 3, 16, [int.from_bytes(words[:2], "big"), int.from_bytes(words[2:], "big")]
        )
        await plant.variables["temperature"].write_value(4.25)
        polled = await _wait_for(
            lambda: any(r.get("voltage") == 231.5 and r.get("current") == 4.25 for r in rows()), 5
        )
        await _wait_for(lambda: (entity()["voltage"], entity()["current"]) == (231.5, 4.25), 2)
        at = datetime.now(UTC).replace(microsecond=0).isoformat()
        sent = time.perf_counter()
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish("meters/m1/power", f'{{"kW": 1.75, "at": "{at}"}}', qos=1)
        await _wait_for(lambda: any(r.get("activePower") == 1.75 for r in rows()), 5)
        arrived = time.perf_counter() - sent
    finally:
        for task in tasks:
            task.cancel()
    assert failures == []
    assert arrived < 1.0  # MQTT message to queryable point
    assert polled < 2.5  # set on the devices to queryable, polling every second
    assert {r["rtId"] for r in rows()} == {rt_id}
