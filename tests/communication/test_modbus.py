"""ReadModbusRegister@1 and WriteModbusRegister@1 against pymodbus's TCP server started here on a
free loopback port (holding, input, coil and discrete tables of two unit ids)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.communication.conftest import redeploy_closes_the_old_connection
from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.communication.protocols.modbus import register_blocks
from workbench.testing.http import free_port
from workbench.testing.servers import in_ci

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _words(fmt: str, value: Any, little: bool = False) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words[::-1] if little else words


class Plc:
    def __init__(self, port: int, server: Any) -> None:
        self.port = port
        self.server = server

    async def set(self, unit: int, fc: int, address: int, values: list[Any]) -> None:
        await self.server.async_setValues(unit, fc, address, values)

    async def get(self, unit: int, fc: int, address: int, count: int) -> list[Any]:
        return list(await self.server.async_getValues(unit, fc, address, count))

    def configuration(self) -> dict[str, Any]:
        return {
            "rtId": "65f00000000000000000c001",
            "ckTypeId": "System.Communication/ModbusServer",
            "rtWellKnownName": "plc1",
            "name": "line 1 PLC",
            "host": "127.0.0.1",
            "port": self.port,
            "unitId": 1,
        }


@pytest.fixture
async def plc() -> AsyncIterator[Plc]:
    try:
        from pymodbus.datastore import (
            ModbusDeviceContext,
            ModbusSequentialDataBlock,
            ModbusServerContext,
        )
        from pymodbus.server import ModbusTcpServer
    except ImportError:
        message = "needs pymodbus (the communication extra) for its Modbus TCP server"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)

    def device() -> Any:
        block: Any = ModbusSequentialDataBlock  # untyped in pymodbus 3.16
        return ModbusDeviceContext(
            di=block(1, [0] * 300),
            co=block(1, [0] * 300),
            hr=block(1, [0] * 300),
            ir=block(1, [0] * 300),
        )

    context = ModbusServerContext(devices={1: device(), 7: device()}, single=False)
    port = free_port()
    server = ModbusTcpServer(context, address=("127.0.0.1", port))
    task = asyncio.create_task(server.serve_forever())
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield Plc(port, server)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()


READ = """
triggers: [{type: FromPolling@1, interval: "00:00:01"}]
transformations:
  - type: ReadModbusRegister@1
    serverConfigurations:
      - server: plc1
        mappings:
          - {register: 10, valueType: Int16, targetPath: $.t.int16}
          - {register: 11, valueType: UInt16, targetPath: $.t.uint16}
          - {register: 12, valueType: Int32, targetPath: $.t.int32}
          - {register: 14, valueType: UInt32, targetPath: $.t.uint32}
          - {register: 16, valueType: Float32, targetPath: $.t.float32}
          - {register: 18, valueType: FLOAT64, targetPath: $.t.float64}
          - {register: 22, valueType: Float32, wordOrder: LittleEndian, targetPath: $.t.swapped}
          - {register: 200, valueType: Int16, targetPath: $.t.far}
          - {register: 5, registerType: Input, valueType: UInt16, targetPath: $.t.input}
          - {register: 3, registerType: Coil, targetPath: $.t.coil}
          - {register: 4, registerType: DISCRETE, targetPath: $.t.discrete}
      - server: line 1 PLC
        unitId: 7
        mappings:
          - {register: 10, valueType: Int16, targetPath: $.unit7}
"""


async def test_read_value_types_word_order_register_types(plc: Plc) -> None:
    await plc.set(1, 3, 10, [(-1234) & 0xFFFF, 54321])
    await plc.set(1, 3, 12, _words("i", -7_000_000) + _words("I", 4_000_000_000))
    await plc.set(1, 3, 16, _words("f", 21.5) + _words("d", -1.0e100))
    await plc.set(1, 3, 22, _words("f", 3.25, little=True))
    await plc.set(1, 3, 200, [42])
    await plc.set(1, 4, 5, [999])
    await plc.set(1, 1, 3, [True])
    await plc.set(1, 2, 4, [True])
    await plc.set(7, 3, 10, [77])
    pipeline = build_pipeline(READ)
    env = ExecutionEnvironment(configurations=[plc.configuration()])
    result = await pipeline.execute({}, env)
    assert result.status == "Completed", result.error
    assert result.output["t"] == {
        "int16": -1234,
        "uint16": 54321,
        "int32": -7_000_000,
        "uint32": 4_000_000_000,
        "float32": 21.5,
        "float64": -1.0e100,
        "swapped": 3.25,
        "far": 42,
        "input": 999,
        "coil": True,
        "discrete": True,
    }
    assert result.output["unit7"] == 77
    # a second execution reuses the connection and sees new values
    await plc.set(1, 3, 10, [5])
    again = await pipeline.execute({}, env)
    assert again.output["t"]["int16"] == 5


def test_neighbouring_registers_share_a_request() -> None:
    mappings = [
        {"register": 0, "valueType": "Float32"},
        {"register": 2, "valueType": "Float32"},
        {"register": 8, "valueType": "Int16"},
        {"register": 100, "valueType": "Int16"},
        {"register": 1, "registerType": "Coil"},
    ]
    blocks = register_blocks(mappings)
    assert ("Holding", 0, 9, [0, 1, 2]) in blocks
    assert ("Holding", 100, 1, [3]) in blocks
    assert ("Coil", 1, 1, [4]) in blocks
    many = [{"register": i * 2, "valueType": "Float32"} for i in range(100)]
    assert len(register_blocks(many)) == 2  # 200 registers: two requests of at most 120


WRITE = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: WriteModbusRegister@1
    serverConfigurations:
      - server: plc1
        mappings:
          - {register: 30, valueType: Float32, valuePath: $.setpoint}
          - {register: 32, valueType: Int32, wordOrder: LittleEndian, valuePath: $.count}
          - {register: 34, valueType: Int16, value: -2}
          - {register: 9, registerType: Coil, valuePath: $.on}
"""


async def test_write_then_read_back(plc: Plc) -> None:
    env = ExecutionEnvironment(configurations=[plc.configuration()])
    result = await build_pipeline(WRITE).execute({"setpoint": 12.75, "count": -5, "on": True}, env)
    assert result.status == "Completed", result.error
    assert await plc.get(1, 3, 30, 2) == _words("f", 12.75)
    assert await plc.get(1, 3, 32, 2) == _words("i", -5, little=True)
    assert await plc.get(1, 3, 34, 1) == [0xFFFE]
    assert await plc.get(1, 1, 9, 1) == [True]
    # out of range for the type: the node and the register are named
    bad = await build_pipeline(WRITE).execute({"setpoint": 1, "count": 2**40, "on": 0}, env)
    assert bad.status == "Failed"
    assert "register 32" in (bad.error or "")
    assert "Int32" in (bad.error or "")


async def test_unreachable_server_is_named(plc: Plc) -> None:
    config = {**plc.configuration(), "port": 1}
    result = await build_pipeline(READ).execute({}, ExecutionEnvironment(configurations=[config]))
    assert result.status == "Failed"
    assert "Modbus server 'plc1'" in (result.error or "")


async def test_a_redeploy_closes_the_old_modbus_connection(plc: Plc) -> None:
    read = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: ReadModbusRegister@1
    serverConfigurations:
      - server: plc1
        mappings: [{register: 10, valueType: Int16, targetPath: $.value}]
"""

    def configuration(port: int) -> dict[str, Any]:
        return {**plc.configuration(), "port": port}

    await redeploy_closes_the_old_connection(
        plc.port, configuration, read, read.replace("register: 10", "register: 11")
    )
