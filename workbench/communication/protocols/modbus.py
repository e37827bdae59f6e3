"""Modbus TCP: ``ReadModbusRegister@1`` and ``WriteModbusRegister@1``.

The server is a ``ModbusServer`` configuration entity (host, port, unitId). Each mapping names a
``register`` (0-based address), its ``registerType`` (Holding, Input, Coil, Discrete) and, for
registers, a ``valueType`` (Int16, UInt16, Int32, UInt32, Int64, UInt64, Float32, Float64) with
its ``wordOrder`` (BigEndian: high word first, the Modbus convention; LittleEndian: low word
first). One poll reads neighbouring registers of a type in one request (at most 120 registers
or 2000 bits a request), so a node reading a hundred tags makes a handful of round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.protocols.connections import resolve_connection
from workbench.communication.schema import enum_schema, enum_value
from workbench.errors import BackendUnavailable

__all__ = ["NODES", "register_blocks"]

log = logging.getLogger("workbench.communication.modbus")

SERVER_TYPE = "System.Communication/ModbusServer"
REGISTER_TYPES = ["Holding", "Input", "Coil", "Discrete"]
VALUE_TYPES = ["Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32", "Float64"]
WORD_ORDERS = ["BigEndian", "LittleEndian"]
_WIDTH = {"Int16": 1, "UInt16": 1, "Int32": 2, "UInt32": 2, "Int64": 4, "UInt64": 4}
_WIDTH.update({"Float32": 2, "Float64": 4})
MAX_REGISTERS = 120
MAX_BITS = 2000
#: unused registers a read may span to join two mappings into one request
MAX_GAP = 8

_MAPPING_COMMON: dict[str, Any] = {
    "register": {"type": "integer", "minimum": 0, "maximum": 65535},
    "registerType": enum_schema(REGISTER_TYPES, "default Holding"),
    "valueType": enum_schema(VALUE_TYPES, "default UInt16 (registers)"),
    "wordOrder": enum_schema(WORD_ORDERS, "order of the 16-bit words (default BigEndian)"),
    "unitId": {"type": "integer", "minimum": 0, "maximum": 255},
}


def _server_list(mapping: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {
                "server": {
                    "type": "string",
                    "description": "the ModbusServer configuration (rtId, rtWellKnownName, name)",
                },
                "unitId": {"type": "integer", "minimum": 0, "maximum": 255},
                "mappings": {"type": "array", "minItems": 1, "items": mapping},
            },
            "required": ["server", "mappings"],
            "additionalProperties": False,
        },
    }


def _datatype(value_type: str) -> Any:
    from pymodbus.client import AsyncModbusTcpClient

    return AsyncModbusTcpClient.DATATYPE[value_type.upper()]


def _kind(mapping: dict[str, Any]) -> tuple[str, str, str]:
    return (
        enum_value(mapping.get("registerType", "Holding"), REGISTER_TYPES),
        enum_value(mapping.get("valueType", "UInt16"), VALUE_TYPES),
        enum_value(mapping.get("wordOrder", "BigEndian"), WORD_ORDERS),
    )


def register_blocks(
    mappings: Sequence[dict[str, Any]],
) -> list[tuple[str, int, int, list[int]]]:
    """Read requests for ``mappings``: (registerType, start, count, indexes of the mappings)."""
    by_type: dict[str, list[tuple[int, int, int]]] = {}
    for index, mapping in enumerate(mappings):
        register_type, value_type, _ = _kind(mapping)
        width = 1 if register_type in ("Coil", "Discrete") else _WIDTH[value_type]
        by_type.setdefault(register_type, []).append((int(mapping["register"]), width, index))
    blocks: list[tuple[str, int, int, list[int]]] = []
    for register_type, items in by_type.items():
        limit = MAX_BITS if register_type in ("Coil", "Discrete") else MAX_REGISTERS
        items.sort()
        start, end, members = items[0][0], items[0][0] + items[0][1], [items[0][2]]
        for address, width, index in items[1:]:
            if address - end <= MAX_GAP and max(end, address + width) - start <= limit:
                end = max(end, address + width)
                members.append(index)
            else:
                blocks.append((register_type, start, end - start, members))
                start, end, members = address, address + width, [index]
        blocks.append((register_type, start, end - start, members))
    return blocks


class _ModbusNode(Node):
    """Connections to Modbus servers, kept open across executions of the node."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def _client(self, reference: str, env: ExecutionEnvironment) -> tuple[Any, int]:
        from pymodbus.client import AsyncModbusTcpClient

        settings = resolve_connection(reference, SERVER_TYPE, env.configurations, env.tenant)
        unit = int(settings.get("unitId") or 1)
        client = self._clients.get(reference)
        if client is None or not client.connected:
            host, port = str(settings.get("host") or ""), int(settings.get("port") or 502)
            client = AsyncModbusTcpClient(host, port=port, timeout=3, retries=1, reconnect_delay=0)
            if not await client.connect():
                client.close()
                raise BackendUnavailable(
                    f"Modbus server {reference!r} at {host}:{port} does not answer; check that it "
                    "runs and the ModbusServer's Host/Port"
                )
            self._clients[reference] = client
        return client, unit

    async def aclose(self) -> None:
        async with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):  # already broken
                client.close()
        await super().aclose()

    def _check(self, response: Any, what: str) -> Any:
        if response.isError():
            raise self.error(f"the Modbus server refused {what}: {response}")
        return response


class ReadModbusRegister(_ModbusNode):
    """Reads the registers and coils of ``serverConfigurations`` (each: a ModbusServer
    ``server`` and ``mappings`` of register, registerType, valueType, wordOrder, targetPath)
    and writes each value to its ``targetPath`` (neighbouring registers in one request)."""

    type_name = "ReadModbusRegister@1"
    properties: ClassVar[dict[str, Any]] = {
        "serverConfigurations": _server_list(
            {
                "type": "object",
                "properties": {**_MAPPING_COMMON, "targetPath": {"type": "string"}},
                "required": ["register", "targetPath"],
                "additionalProperties": False,
            }
        ),
    }
    required = ("serverConfigurations",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        async with self._lock:
            for server in self.prop("serverConfigurations"):
                values = await self._read_server(server, env)
                for mapping, value in zip(server["mappings"], values, strict=True):
                    self.write(context, value, mapping["targetPath"])

    async def _read_server(self, server: dict[str, Any], env: ExecutionEnvironment) -> list[Any]:
        mappings = server["mappings"]
        client, unit = await self._client(server["server"], env)
        unit = int(server.get("unitId", unit))
        values: list[Any] = [None] * len(mappings)
        for register_type, start, count, members in register_blocks(mappings):
            read = {
                "Holding": client.read_holding_registers,
                "Input": client.read_input_registers,
                "Coil": client.read_coils,
                "Discrete": client.read_discrete_inputs,
            }[register_type]
            try:
                response = await read(start, count=count, device_id=unit)
            except Exception as exc:  # ModbusException, connection lost mid-request
                self._clients.pop(server["server"], None)
                raise BackendUnavailable(
                    f"Modbus server {server['server']!r}: reading {register_type} {start}+{count} "
                    f"failed ({exc}); check the server and its unit id {unit}"
                ) from exc
            self._check(response, f"{register_type} {start}+{count} (unit {unit})")
            for index in members:
                mapping = mappings[index]
                _, value_type, word_order = _kind(mapping)
                offset = int(mapping["register"]) - start
                if register_type in ("Coil", "Discrete"):
                    values[index] = bool(response.bits[offset])
                    continue
                words = response.registers[offset : offset + _WIDTH[value_type]]
                values[index] = client.convert_from_registers(
                    words,
                    _datatype(value_type),
                    word_order="big" if word_order == "BigEndian" else "little",
                )
        return values


class WriteModbusRegister(_ModbusNode):
    """Writes values to holding registers and coils: each mapping of ``serverConfigurations``
    gives register, registerType (Holding or Coil), valueType, wordOrder and the ``value`` or
    the ``valuePath`` of the value to write."""

    type_name = "WriteModbusRegister@1"
    properties: ClassVar[dict[str, Any]] = {
        "serverConfigurations": _server_list(
            {
                "type": "object",
                "properties": {
                    **_MAPPING_COMMON,
                    "registerType": enum_schema(["Holding", "Coil"], "default Holding"),
                    "value": {"type": ["number", "boolean"]},
                    "valuePath": {"type": "string"},
                },
                "required": ["register"],
                "additionalProperties": False,
            }
        ),
    }
    required = ("serverConfigurations",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        async with self._lock:
            for server in self.prop("serverConfigurations"):
                client, unit = await self._client(server["server"], env)
                unit = int(server.get("unitId", unit))
                for index, mapping in enumerate(server["mappings"]):
                    await self._write(client, unit, context, mapping, index)

    async def _write(
        self, client: Any, unit: int, context: DataContext, mapping: dict[str, Any], index: int
    ) -> None:
        register_type, value_type, word_order = _kind(mapping)
        value = (
            context.get(mapping["valuePath"]) if "valuePath" in mapping else mapping.get("value")
        )
        where = f"serverConfigurations mapping {index} (register {mapping['register']})"
        if value is None:
            raise self.error(f"{where}: no value (set value or valuePath)", "serverConfigurations")
        address = int(mapping["register"])
        if register_type == "Coil":
            response = await client.write_coil(address, bool(value), device_id=unit)
        else:
            numeric = float(value) if value_type.startswith("Float") else int(value)
            try:
                words = client.convert_to_registers(
                    numeric,
                    _datatype(value_type),
                    word_order="big" if word_order == "BigEndian" else "little",
                )
            except Exception as exc:  # struct.error: out of range for the type
                raise self.error(
                    f"{where}: {value!r} does not fit a {value_type}", "serverConfigurations"
                ) from exc
            response = await client.write_registers(address, words, device_id=unit)
        self._check(response, f"the write of {where}")


NODES = [ReadModbusRegister, WriteModbusRegister]
