"""OPC UA: ``FromOpcUa@1`` (subscriptions), ``ReadOpcUaNodes@1``, ``WriteOpcUaNodes@1``.

The server is an ``OpcUaServer`` configuration entity (endpointUrl, username, password,
securityPolicy: None or Basic256Sha256). With Basic256Sha256 the adapter's credentials give its
certificate and key (``certFile``, ``keyFile``; optionally ``serverCertFile`` and
``securityMode`` Sign or SignAndEncrypt, the default). Node ids are OPC UA strings
(``ns=2;s=Line1.Temperature``, ``ns=2;i=1001``). Reads and writes of many nodes are one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.errors import PipelineExecutionError
from workbench.communication.node import ExecutionEnvironment, Fire, Node, TriggerHost, TriggerNode
from workbench.communication.protocols.connections import host_configurations, resolve_connection
from workbench.communication.schema import enum_schema, enum_value
from workbench.errors import BackendUnavailable, ValidationError

__all__ = ["NODES", "opcua_client"]

log = logging.getLogger("workbench.communication.opcua")

SERVER_TYPE = "System.Communication/OpcUaServer"
_SERVER = {
    "type": "string",
    "description": "the OpcUaServer configuration (rtId, rtWellKnownName or name)",
}
_NODE_ID = {"type": "string", "minLength": 1, "description": "e.g. ns=2;s=Line1.Temperature"}


async def opcua_client(settings: dict[str, Any]) -> Any:
    """A connected ``asyncua.Client`` for the resolved OpcUaServer ``settings``."""
    from asyncua.client.client import Client

    url = settings.get("endpointUrl")
    if not url:
        raise ValidationError(
            f"OpcUaServer {settings.get('name') or settings.get('rtId')!r} has no EndpointUrl"
        )
    client = Client(str(url), timeout=float(settings.get("timeoutSeconds") or 10))
    if settings.get("username"):
        client.set_user(str(settings["username"]))
        client.set_password(str(settings.get("password") or ""))
    policy = str(settings.get("securityPolicy") or "None")
    if policy != "None":
        if not settings.get("certFile") or not settings.get("keyFile"):
            raise ValidationError(
                f"OpcUaServer {settings.get('name')!r} uses {policy}: give the adapter's "
                "certificate and key (certFile, keyFile) in its credentials file"
            )
        mode = enum_value(
            settings.get("securityMode") or "SignAndEncrypt", ["Sign", "SignAndEncrypt"]
        )
        parts = [policy, mode, str(settings["certFile"]), str(settings["keyFile"])]
        if settings.get("serverCertFile"):
            parts.append(str(settings["serverCertFile"]))
        if settings.get("applicationUri"):
            client.application_uri = str(settings["applicationUri"])
        await client.set_security_string(",".join(parts))
    try:
        await client.connect()
    except (OSError, TimeoutError) as exc:
        raise BackendUnavailable(
            f"OPC UA server {settings.get('name')!r} at {url} does not answer ({exc!r}); check "
            "that it runs and the OpcUaServer's EndpointUrl"
        ) from exc
    return client


def _value_attribute(ua: Any) -> Any:
    """``ua.AttributeIds.Value`` (not exported in asyncua's typing)."""
    return ua.AttributeIds.Value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str, dict)):
        return value
    return str(value)


class _OpcUaNode(Node):
    """A connection kept open across executions (reconnected when it broke)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._types: dict[str, Any] = {}

    async def _connected(self, env: ExecutionEnvironment) -> Any:
        if self._client is None:
            settings = resolve_connection(
                self.prop("server"), SERVER_TYPE, env.configurations, env.tenant
            )
            self._client = await opcua_client(settings)
        return self._client

    async def aclose(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # already broken
                await client.disconnect()
        await super().aclose()

    async def _with_client(self, env: ExecutionEnvironment, work: Any) -> Any:
        async with self._lock:
            for attempt in (1, 2):
                client = await self._connected(env)
                try:
                    return await work(client)
                except (OSError, ConnectionError, TimeoutError) as exc:
                    self._client = None
                    if attempt == 2:
                        raise BackendUnavailable(
                            f"OPC UA server {self.prop('server')!r}: {exc!r}"
                        ) from exc


class ReadOpcUaNodes(_OpcUaNode):
    """Reads the values of ``nodes`` (each a nodeId and the targetPath it goes to) from
    ``server`` in one request."""

    type_name = "ReadOpcUaNodes@1"
    properties: ClassVar[dict[str, Any]] = {
        "server": _SERVER,
        "nodes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"nodeId": _NODE_ID, "targetPath": {"type": "string"}},
                "required": ["nodeId", "targetPath"],
                "additionalProperties": False,
            },
        },
    }
    required = ("server", "nodes")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        items = self.prop("nodes")

        async def read(client: Any) -> list[Any]:
            from asyncua import ua

            ids = [client.get_node(i["nodeId"]).nodeid for i in items]
            values = await client.uaclient.read_attributes(ids, _value_attribute(ua))
            for item, dv in zip(items, values, strict=True):
                if dv.StatusCode is not None and not dv.StatusCode.is_good():
                    raise self.error(
                        f"node {item['nodeId']!r}: {dv.StatusCode.name}; check the node id",
                        "nodes",
                    )
            return [dv.Value.Value if dv.Value is not None else None for dv in values]

        try:
            values = await self._with_client(env, read)
        except (BackendUnavailable, PipelineExecutionError):
            raise
        except Exception as exc:  # ua.UaStatusCodeError: BadNodeIdUnknown, ...
            raise self.error(f"reading {[i['nodeId'] for i in items]}: {exc}", "nodes") from exc
        for item, value in zip(items, values, strict=True):
            self.write(context, _jsonable(value), item["targetPath"])


class WriteOpcUaNodes(_OpcUaNode):
    """Writes values to ``nodes`` (each a nodeId and a ``value`` or the ``valuePath`` of one) on
    ``server`` in one request, typed as each node's DataType (a Double node gets a Double)."""

    type_name = "WriteOpcUaNodes@1"
    properties: ClassVar[dict[str, Any]] = {
        "server": _SERVER,
        "nodes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"nodeId": _NODE_ID, "value": {}, "valuePath": {"type": "string"}},
                "required": ["nodeId"],
                "additionalProperties": False,
            },
        },
    }
    required = ("server", "nodes")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        from asyncua import ua

        items = self.prop("nodes")
        values = [
            context.get(i["valuePath"]) if "valuePath" in i else i.get("value") for i in items
        ]

        async def write(client: Any) -> None:
            nodes = [client.get_node(i["nodeId"]) for i in items]
            variants = []
            for item, node, raw in zip(items, nodes, values, strict=True):
                value = raw
                kind = self._types.get(item["nodeId"])
                if kind is None:
                    kind = self._types[item["nodeId"]] = await node.read_data_type_as_variant_type()
                if kind in (ua.VariantType.Float, ua.VariantType.Double):
                    value = float(value)
                elif kind.name.startswith(("Int", "UInt", "SByte", "Byte")):
                    value = int(value)
                variants.append(ua.DataValue(ua.Variant(value, kind)))
            await client.write_values(nodes, variants)

        try:
            await self._with_client(env, write)
        except BackendUnavailable:
            raise
        except Exception as exc:  # BadTypeMismatch, BadNotWritable, ValueError of a conversion
            raise self.error(f"writing {[i['nodeId'] for i in items]}: {exc}", "nodes") from exc


class _Changes:
    """asyncua data-change handler: queue the changes for the trigger."""

    def __init__(self, queue: asyncio.Queue[dict[str, Any]], node_ids: dict[Any, str]) -> None:
        self.queue = queue
        self.node_ids = node_ids

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        dv = data.monitored_item.Value
        self.queue.put_nowait(
            {
                "nodeId": self.node_ids.get(node.nodeid, node.nodeid.to_string()),
                "value": _jsonable(value),
                "sourceTimestamp": _jsonable(dv.SourceTimestamp),
                "serverTimestamp": _jsonable(dv.ServerTimestamp),
                "statusCode": dv.StatusCode.name if dv.StatusCode else "Good",
            }
        )

    def status_change_notification(self, status: Any) -> None:
        log.warning("OPC UA subscription status changed: %s", status)


class FromOpcUa(TriggerNode):
    """Subscribes to ``subscriptions`` on ``server`` (each a nodeId with its samplingInterval in
    ms and an optional deadband: absolute, or percent of the EU range); runs the pipeline for the
    changes of each publishing cycle: ``$.values`` holds them (nodeId, value, sourceTimestamp,
    serverTimestamp, statusCode), ``$.byNodeId`` maps each nodeId to its latest value."""

    type_name = "FromOpcUa@1"
    trigger_type = "Event"
    properties: ClassVar[dict[str, Any]] = {
        "server": _SERVER,
        "publishingInterval": {"type": "number", "minimum": 0, "description": "ms (default 1000)"},
        "subscriptions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "nodeId": _NODE_ID,
                    "samplingInterval": {"type": "number", "minimum": 0, "description": "ms"},
                    "deadband": {"type": "number", "minimum": 0},
                    "deadbandType": enum_schema(["Absolute", "Percent"]),
                    "queueSize": {"type": "integer", "minimum": 0},
                },
                "required": ["nodeId"],
                "additionalProperties": False,
            },
        },
    }
    required = ("server", "subscriptions")

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        runtime = getattr(host, "runtime", None)
        settings = resolve_connection(
            self.prop("server"),
            SERVER_TYPE,
            host_configurations(host),
            getattr(runtime, "tenant", None),
        )
        delay = 0.2
        while True:
            try:
                await self._subscribe(settings, fire)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost connection, refused session: retry with backoff
                log.warning(
                    "OPC UA subscription lost",
                    extra={"server": settings.get("name"), "error": repr(exc), "retryIn": delay},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _subscribe(self, settings: dict[str, Any], fire: Fire) -> None:
        from asyncua import ua

        client = await opcua_client(settings)
        try:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            items = self.prop("subscriptions")
            nodes = [client.get_node(i["nodeId"]) for i in items]
            handler = _Changes(
                queue, {n.nodeid: i["nodeId"] for n, i in zip(nodes, items, strict=True)}
            )
            subscription = await client.create_subscription(
                float(self.prop("publishingInterval", 1000)), handler
            )
            requests = []
            for item, node in zip(items, nodes, strict=True):
                monitor_filter = None
                if item.get("deadband"):
                    monitor_filter = ua.DataChangeFilter()
                    monitor_filter.Trigger = ua.DataChangeTrigger(1)  # status or value
                    kind = enum_value(item.get("deadbandType", "Absolute"), ["Absolute", "Percent"])
                    monitor_filter.DeadbandType = 1 if kind == "Absolute" else 2
                    monitor_filter.DeadbandValue = float(item["deadband"])
                requests.append(
                    subscription._make_monitored_item_request(
                        node,
                        _value_attribute(ua),
                        monitor_filter,
                        int(item.get("queueSize", 0)),
                        ua.MonitoringMode.Reporting,
                        float(item.get("samplingInterval", 1000)),
                    )
                )
            for result in await subscription.create_monitored_items(requests):
                if isinstance(result, ua.StatusCode):
                    result.check()
            while True:
                changes = [await queue.get()]
                while not queue.empty():
                    changes.append(queue.get_nowait())
                context = DataContext({})
                self.write(
                    context,
                    {"values": changes, "byNodeId": {c["nodeId"]: c["value"] for c in changes}},
                )
                await fire(context.data, self.trigger_type)
        finally:
            try:
                await client.disconnect()
            except Exception:  # already gone
                log.debug("OPC UA disconnect failed", exc_info=True)


NODES = [FromOpcUa, ReadOpcUaNodes, WriteOpcUaNodes]
