"""The message bus port: topics, transient subscriptions, durable consumer groups with ack.

One :class:`MessageBus` instance serves one tenant (RabbitMQ: the tenant's vhost ``wb-<tenant>``;
SQLite log: the tenant's log file; in-process: a bus per tenant) — open one with
:func:`workbench.messaging.registry.bus_from_url`. The multi-tenant services use
:class:`workbench.messaging.tenants.TenantBuses`, which routes ``tenants.<id>.<topic>`` to the
tenant's bus.

Addressing follows AMQP: a message goes to a **topic** (an exchange name: ``entity-events``,
``dataflow.<id>``, ``commands``, ``stream-points``, or any other name) with a **routing key**
(``entity-events``: ``<ckTypeId>.<INSERT|UPDATE|DELETE>``). Receivers name a topic and a key
*pattern* with AMQP topic semantics: words separated by ``.``, ``*`` matches exactly one word, ``#``
zero or more (see :func:`topic_matches`). CK type ids contain dots (``System.Communication/
Adapter``); match them with ``#`` or literally.

Two ways to receive:

* :meth:`MessageBus.subscribe` — transient and broadcast: every subscriber gets every message
  published after it subscribed; nothing is kept for it while it is away; no ack. Feeds GraphQL
  subscriptions. Yields message bodies.
* :meth:`MessageBus.consume` — durable, named **group** (a durable queue): messages published after
  the group was created (:meth:`MessageBus.ensure_group` or the first ``consume``) are kept until a
  member acks them; the members of a group compete (each message to one member); unacked messages
  are redelivered (``redelivered=True``); ``nack(requeue=False)`` or too many deliveries moves a
  message to the group's dead-letter queue with its reason (:meth:`MessageBus.dead_letters`).
  Each message has an id (the dedupe key: set it to ``rtId`` + ``timestamp`` for points, see
  :func:`point_message_id`); a group does not hand out again an id it has acked (within a window).
  Yields :class:`Delivery` objects.

Publishing: :meth:`MessageBus.publish` is fire-and-forget and callable from any thread (GraphQL
mutations run in worker threads); :meth:`MessageBus.publish_many` is awaited and returns only once
every message is durably stored (publisher confirms on RabbitMQ, a committed transaction in the
SQLite log). Bodies must be JSON-compatible values or :class:`EntityEvent` (see
:mod:`workbench.messaging.codec`); the in-process bus passes them through unchanged.
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "COMMANDS",
    "DEFAULT_MAX_DELIVERIES",
    "ENTITY_EVENTS",
    "STREAM_POINTS",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "EntityEvent",
    "MessageBus",
    "OutgoingMessage",
    "Subscription",
    "UpdateType",
    "dataflow_topic",
    "entity_event_key",
    "entity_topic",
    "new_message_id",
    "point_message_id",
    "topic_matches",
    "validate_name",
]

#: entity changes; routing key ``<ckTypeId>.<INSERT|UPDATE|DELETE>``, body :class:`EntityEvent`
ENTITY_EVENTS = "entity-events"
#: commands to adapters and the controller (execute pipeline, configuration changed)
COMMANDS = "commands"
#: batches of stream points from adapters, written by the stream service
STREAM_POINTS = "stream-points"
#: how often a group hands out a message before it goes to the dead-letter queue
DEFAULT_MAX_DELIVERIES = 5


def dataflow_topic(data_flow_id: str) -> str:
    """The topic carrying pipeline data events of one data flow (``dataflow.<id>``)."""
    return f"dataflow.{data_flow_id}"


class UpdateType(StrEnum):
    """What happened to an entity (the GraphQL ``updateTypes`` values)."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class EntityEvent:
    """An entity was inserted, updated or deleted in ``tenant_id``.

    ``entity`` is the entity as a JSON-friendly dict (``Entity.to_dict()``; for deletes the last
    known state or just the system fields).
    """

    tenant_id: str
    update_type: UpdateType
    rt_id: str
    ck_type_id: str
    entity: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def entity_topic(tenant_id: str) -> str:
    """The multi-tenant address of a tenant's :class:`EntityEvent` (``tenants.<id>.entities``).

    Used on buses shared by tenants (``LocalMessageBus`` in one process,
    :class:`~workbench.messaging.tenants.TenantBuses`, which maps it to the tenant bus's
    ``entity-events`` topic keyed by :func:`entity_event_key`)."""
    return f"tenants.{tenant_id}.entities"


def entity_event_key(ck_type_id: str, update_type: UpdateType | str) -> str:
    """Routing key of an entity event: ``<ckTypeId>.<INSERT|UPDATE|DELETE>``."""
    return f"{ck_type_id}.{UpdateType(update_type).value}"


def new_message_id() -> str:
    """A fresh random message id (the default dedupe key)."""
    return secrets.token_hex(12)


def point_message_id(rt_id: str, timestamp: datetime | str) -> str:
    """The dedupe key of a stream point: ``<rtId>@<ISO timestamp>``."""
    stamp = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
    return f"{rt_id}@{stamp}"


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}")


def validate_name(kind: str, value: str) -> str:
    """Check a topic or group name (letters, digits, ``_ . : -``; at most 200 characters)."""
    if not _NAME.fullmatch(value):
        from workbench.errors import ValidationError

        raise ValidationError(
            f"{kind} {value!r} is not a valid bus name: use letters, digits, '_', '.', ':' or "
            "'-' (starting with a letter or digit, at most 200 characters)"
        )
    return value


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` one word, ``#`` zero or more words (words split on ``.``)."""
    if pattern in ("#", key):
        return True
    return _match(pattern.split("."), key.split(".") if key else [])


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish: ``topic``, ``body``, routing ``key``, ``id`` (dedupe key), headers."""

    topic: str
    body: Any
    key: str = ""
    id: str = field(default_factory=new_message_id)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetter:
    """A message a group gave up on: the message, why, how often it was delivered, when."""

    topic: str
    key: str
    id: str
    body: Any
    reason: str
    deliveries: int
    headers: Mapping[str, str] = field(default_factory=dict)
    dead_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Delivery:
    """One message handed to a member of a consumer group; settle it with ack or nack.

    ``delivery_count`` counts deliveries to this group including this one (1 on the first);
    ``redelivered`` is true when it was handed out before (nacked with requeue, or its consumer
    went away without settling it).
    """

    __slots__ = (
        "_settle",
        "body",
        "delivery_count",
        "headers",
        "id",
        "key",
        "redelivered",
        "settled",
        "timestamp",
        "topic",
    )

    def __init__(
        self,
        *,
        topic: str,
        key: str,
        id: str,
        body: Any,
        headers: Mapping[str, str],
        delivery_count: int,
        timestamp: datetime,
        settle: Callable[[str, bool, str], Awaitable[None]],
    ) -> None:
        self.topic = topic
        self.key = key
        self.id = id
        self.body = body
        self.headers = headers
        self.delivery_count = delivery_count
        self.redelivered = delivery_count > 1
        self.timestamp = timestamp
        self.settled = False
        self._settle = settle

    async def ack(self) -> None:
        """Done with it: the group never sees this message (or its id) again."""
        await self._finish("ack", False, "")

    async def nack(self, requeue: bool = True, reason: str = "") -> None:
        """Not processed. ``requeue=True``: deliver again (to the dead-letter queue once it was
        delivered ``max_deliveries`` times); ``requeue=False``: to the dead-letter queue now, with
        ``reason`` (e.g. the error of a poison message)."""
        await self._finish("nack", requeue, reason or ("rejected" if not requeue else ""))

    async def _finish(self, action: str, requeue: bool, reason: str) -> None:
        if self.settled:
            from workbench.errors import ValidationError

            raise ValidationError(f"message {self.id!r} on {self.topic!r} is already settled")
        self.settled = True
        await self._settle(action, requeue, reason)

    def __repr__(self) -> str:
        return f"<Delivery {self.topic}/{self.key} id={self.id} n={self.delivery_count}>"


class Subscription(ABC):
    """An open transient subscription: iterate it for message bodies, close it to stop."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Any]: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving; pending iteration ends."""


class Consumer(ABC):
    """A member of a durable consumer group: iterate it for :class:`Delivery` objects.

    Messages it holds unsettled when it is closed (or its process dies) go back to the group and
    are redelivered to another member. Use as ``async with bus.consume(...) as consumer:``.
    """

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Delivery]: ...

    @abstractmethod
    async def close(self) -> None:
        """Leave the group; unsettled messages are redelivered; iteration ends."""

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class MessageBus(ABC):
    """Port for publishing and receiving messages (one tenant; see the module docstring).

    Adapters: :class:`~workbench.messaging.local.LocalMessageBus` (in process),
    :class:`~workbench.messaging.sqlite_log.SqliteLogBus` (across processes on one machine),
    :class:`~workbench.messaging.rabbitmq.RabbitMqBus` (RabbitMQ). All pass
    :class:`workbench.testing.message_bus_contract.MessageBusContract`.
    """

    #: the tenant this bus serves (None: a bus shared by tenants, addressed by topic)
    tenant: str | None = None
    #: the bus sends bodies as :func:`~workbench.messaging.codec.encode_body` makes them, so a
    #: :class:`~workbench.messaging.codec.EncodedBody` goes as it is (the edge outbox hands
    #: its stored rows over without decoding them); an in-process bus hands out objects
    wire_bodies: bool = False

    @abstractmethod
    def publish(
        self,
        topic: str,
        message: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send ``message`` to ``topic`` with routing ``key`` (fire and forget; any thread).

        Subscribers of the topic whose pattern matches ``key`` and existing groups receive it,
        in publish order per publisher."""

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> None:
        """Fire-and-forget :meth:`publish` of a batch, in order (adapters send it at once)."""
        for m in messages:
            self.publish(m.topic, m.body, key=m.key, message_id=m.id, headers=m.headers)

    @abstractmethod
    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        """Receive bodies published to ``topic`` (keys matching ``pattern``) from now on.

        Call in a running event loop; messages arrive on that loop. Transient: nothing is kept
        while the subscriber is away; a subscriber that falls far behind may lose messages."""

    @abstractmethod
    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish a batch and return once every message is durably stored (confirmed).

        Raises :class:`~workbench.errors.BackendUnavailable` when the bus cannot confirm them
        (the caller may publish again: ids make the retry harmless to groups)."""

    async def publish_confirmed(
        self,
        topic: str,
        body: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish one message with confirm; returns its id."""
        message = OutgoingMessage(
            topic, body, key, message_id or new_message_id(), dict(headers or {})
        )
        await self.publish_many([message])
        return message.id

    @abstractmethod
    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None:
        """Create the durable group ``group`` on ``topic`` (keys matching ``pattern``) if missing.

        From then on messages are kept for it even while no member runs. A group is bound to one
        topic and pattern; asking for the same group with another topic or pattern is an error."""

    @abstractmethod
    def consume(
        self,
        topic: str,
        pattern: str = "#",
        *,
        group: str,
        prefetch: int = 100,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> Consumer:
        """Join durable group ``group`` on ``topic`` (created if missing, see :meth:`ensure_group`).

        ``prefetch`` bounds the unsettled messages this member holds; a message delivered
        ``max_deliveries`` times without ack goes to the dead-letter queue. Call in a running
        event loop."""

    @abstractmethod
    async def dead_letters(self, topic: str, group: str, *, limit: int = 100) -> list[DeadLetter]:
        """The messages group ``group`` of ``topic`` gave up on, oldest first (left in place)."""

    @abstractmethod
    async def pending(self, topic: str, group: str) -> int:
        """How many messages group ``group`` of ``topic`` has not acked yet (ready + unsettled)."""

    async def aclose(self) -> None:
        """Release connections from async code (default: :meth:`close`)."""
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (no-op for in-process buses)."""
