"""MQTT plug and socket: ``FromMqtt@1`` (subscribe, one execution per message) and
``ToMqtt@1`` (publish the value at ``path``).

The broker is an ``MqttBroker`` configuration entity (host, port, username, password,
isSslEnabled; the adapter's credentials may add password, caFile, certFile, keyFile). Topic
filters take MQTT wildcards (``plant/+/temperature``, ``plant/#``), QoS 0, 1 or 2. Payloads are
parsed as JSON (default), text or bytes (base64 text in the data context).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Fire, Node, TriggerHost, TriggerNode
from workbench.communication.protocols.connections import host_configurations, resolve_connection
from workbench.communication.schema import enum_schema
from workbench.errors import BackendUnavailable, ValidationError

__all__ = ["NODES", "decode_payload", "encode_payload", "mqtt_client"]

log = logging.getLogger("workbench.communication.mqtt")

BROKER_TYPE = "System.Communication/MqttBroker"
_FORMATS = ["Json", "Text", "Bytes"]
_QOS = {"type": "integer", "enum": [0, 1, 2], "description": "MQTT quality of service"}
_BROKER = {
    "type": "string",
    "description": "the MqttBroker configuration (rtId, rtWellKnownName or name)",
}


def mqtt_client(settings: dict[str, Any], client_id: str | None = None, **options: Any) -> Any:
    """An ``aiomqtt.Client`` for the broker ``settings`` (a resolved MqttBroker)."""
    import aiomqtt

    tls = None
    if settings.get("isSslEnabled") or settings.get("caFile"):
        tls = ssl.create_default_context(cafile=settings.get("caFile"))
        if settings.get("certFile"):
            tls.load_cert_chain(settings["certFile"], settings.get("keyFile"))
    host = settings.get("host")
    if not host:
        raise ValidationError(
            f"MqttBroker {settings.get('name') or settings.get('rtId')!r} has no host: set its Host"
        )
    port = int(settings.get("port") or (8883 if tls else 1883))
    return aiomqtt.Client(
        str(host),
        port,
        username=settings.get("username"),
        password=settings.get("password"),
        identifier=client_id,
        tls_context=tls,
        timeout=float(settings.get("timeoutSeconds") or 10),
        **options,
    )


def decode_payload(payload: bytes, form: str) -> Any:
    """A received payload as JSON, text or base64 text. JSON is parsed by orjson (a 1,000-point
    poll in a fifth of the stdlib's time; an integer past 64 bits comes out as a float); what it
    refuses goes through the stdlib, which reads ``NaN`` and raises the errors it always did."""
    if form == "Bytes":
        return base64.b64encode(payload).decode("ascii")
    if form == "Json":
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    text = payload.decode("utf-8")
    return json.loads(text) if form == "Json" else text


def encode_payload(value: Any, form: str) -> bytes:
    """A value to publish: JSON, text (str() of it), or bytes (given as base64 text)."""
    if form == "Bytes":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        return base64.b64decode(str(value), validate=True)
    if form == "Text":
        return ("" if value is None else str(value)).encode("utf-8")
    return json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")


def _filters(node: Node) -> list[tuple[str, int]]:
    default_qos = int(node.prop("qos", 0))
    out = []
    for item in node.prop("topics") or []:
        if isinstance(item, str):
            out.append((item, default_qos))
        else:
            out.append((str(item["topic"]), int(item.get("qos", default_qos))))
    return out


class FromMqtt(TriggerNode):
    """Runs the pipeline for each MQTT message on ``topics`` (filters with + and # wildcards,
    each with its QoS) from ``broker``; the context holds ``topic``, ``payload`` (JSON, text or
    base64 bytes: ``payloadFormat``), ``qos``, ``retain`` and ``receivedAt``."""

    type_name = "FromMqtt@1"
    trigger_type = "Event"
    properties: ClassVar[dict[str, Any]] = {
        "broker": _BROKER,
        "topics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "properties": {"topic": {"type": "string", "minLength": 1}, "qos": _QOS},
                        "required": ["topic"],
                        "additionalProperties": False,
                    },
                ]
            },
            "description": "topic filters (+ one level, # the rest), optionally with a qos",
        },
        "qos": {**_QOS, "description": "QoS of filters given without one (default 0)"},
        "payloadFormat": enum_schema(_FORMATS, "how the payload is read (default Json)"),
        "clientId": {"type": "string", "description": "MQTT client identifier"},
        "cleanSession": {
            "type": "boolean",
            "description": "false (with a clientId): the broker keeps QoS 1/2 messages while "
            "the adapter is away",
        },
    }
    required = ("broker", "topics")

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        import aiomqtt

        runtime = getattr(host, "runtime", None)
        settings = resolve_connection(
            self.prop("broker"),
            BROKER_TYPE,
            host_configurations(host),
            getattr(runtime, "tenant", None),
        )
        form = self.enum("payloadFormat", _FORMATS, "Json")
        filters = _filters(self)
        clean = self.prop("cleanSession")
        delay = 0.2
        while True:
            try:
                client = mqtt_client(
                    settings,
                    self.prop("clientId"),
                    clean_session=None if clean is None else bool(clean),
                )
                async with client:
                    await client.subscribe([(t, q) for t, q in filters])
                    delay = 0.2
                    async for message in client.messages:
                        await self._deliver(message, form, fire)
            except aiomqtt.MqttError as exc:
                log.warning(
                    "MQTT broker unreachable",
                    extra={"broker": settings.get("name"), "error": str(exc), "retryIn": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _deliver(self, message: Any, form: str, fire: Fire) -> None:
        try:
            payload = decode_payload(bytes(message.payload or b""), form)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning(
                "MQTT payload is not %s; skipped",
                form,
                extra={"topic": message.topic.value, "error": str(exc)},
            )
            return
        context = DataContext({})
        item = {
            "topic": message.topic.value,
            "payload": payload,
            "qos": message.qos,
            "retain": bool(message.retain),
            "receivedAt": datetime.now(UTC).isoformat(),
        }
        self.write(context, item)
        await fire(context.data, self.trigger_type)


class ToMqtt(Node):
    """Publishes the value at ``path`` to ``topic`` (or the topic at ``topicPath``) on
    ``broker`` with ``qos`` and ``retain``; ``payloadFormat`` Json (default), Text or Bytes
    (base64 text in the context). With ``perItem`` an array is published item by item."""

    type_name = "ToMqtt@1"
    properties: ClassVar[dict[str, Any]] = {
        "broker": _BROKER,
        "topic": {"type": "string", "minLength": 1, "description": "topic (no wildcards)"},
        "topicPath": {"type": "string", "description": "where the topic is (per item)"},
        "qos": _QOS,
        "retain": {"type": "boolean"},
        "payloadFormat": enum_schema(_FORMATS, "how the value is sent (default Json)"),
        "perItem": {"type": "boolean", "description": "publish each item of an array"},
    }
    required = ("broker",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _connected(self, env: ExecutionEnvironment) -> Any:
        if self._client is None:
            settings = resolve_connection(
                self.prop("broker"), BROKER_TYPE, env.configurations, env.tenant
            )
            client = mqtt_client(settings)
            await client.__aenter__()
            self._client = client
        return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception:  # already broken
                log.debug("MQTT client close failed", exc_info=True)

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()
        await super().aclose()

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        import aiomqtt

        value = context.get(self.path)
        items = value if self.prop("perItem") and isinstance(value, list) else [value]
        form = self.enum("payloadFormat", _FORMATS, "Json")
        messages = []
        for index, item in enumerate(items):
            topic = self.prop("topic")
            if "topicPath" in self.props:
                scope = DataContext(item) if self.prop("perItem") else context
                topic = scope.get(self.prop("topicPath"))
            if not topic or any(c in str(topic) for c in "+#"):
                raise self.error(
                    f"no publishable topic for item {index}: {topic!r} (set topic or topicPath; "
                    "no + or # wildcards)",
                    "topic",
                )
            try:
                messages.append((str(topic), encode_payload(item, form)))
            except ValueError as exc:
                raise self.error(f"item {index} is not {form}: {exc}", "payloadFormat") from exc
        qos, retain = int(self.prop("qos", 0)), bool(self.prop("retain", False))
        async with self._lock:
            for attempt in (1, 2):
                try:
                    client = await self._connected(env)
                    for topic, payload in messages:
                        await client.publish(topic, payload, qos=qos, retain=retain)
                    return
                except aiomqtt.MqttError as exc:
                    await self._drop()
                    if attempt == 2:
                        raise BackendUnavailable(
                            f"MQTT broker {self.prop('broker')!r}: {exc}; check that it runs "
                            "and its Host/Port/credentials"
                        ) from exc


NODES = [FromMqtt, ToMqtt]
