"""The RabbitMQ bus (aio-pika): a tenant's vhost ``wb-<tenant>``, one topic exchange per topic.

Topology (in the tenant's vhost; create it with :mod:`workbench.messaging.rabbitmq_admin`):

* every topic (``entity-events``, ``dataflow.<id>``, ``commands``, ``stream-points``, ...) is a
  durable **topic exchange** of that name; messages are persistent, routing key = message key;
* a group is the durable queue ``g.<group>`` bound to its topic with its pattern; its topic and
  pattern are recorded in the queue's ``x-dead-letter-routing-key`` argument, which RabbitMQ
  compares on every declaration, so a second declaration with another binding is refused;
* the group's dead letters go to the durable queue ``dlq.<group>`` with headers ``x-wb-reason``,
  ``x-wb-deliveries``, ``x-wb-topic`` and ``x-wb-key``;
* a transient subscription is an exclusive, auto-deleted, server-named queue.

The connection lives on a thread of its own (its own event loop), so :meth:`RabbitMqBus.publish`
may be called from any thread and consumers on any loop. Publishing goes through one ordered pump:
messages published one after another are sent in that order, in batches, on a channel with
publisher confirms; :meth:`publish_many` returns when the broker confirmed the whole batch. When
the connection drops, the bus reconnects with exponential backoff (0.1 s doubling to
``max_backoff``) and re-opens its consumers and subscriptions; unsettled messages of the lost
connection are redelivered by the broker. Requeued messages are published again with a delivery
count in ``x-wb-deliveries`` (RabbitMQ's classic queues do not count), so ``max_deliveries`` holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pamqp.commands import Basic

from workbench.errors import BackendUnavailable, ValidationError
from workbench.messaging.base import (
    DEFAULT_MAX_DELIVERIES,
    Consumer,
    DeadLetter,
    MessageBus,
    OutgoingMessage,
    Subscription,
    new_message_id,
    validate_name,
)
from workbench.messaging.bus_urls import redact_url, tenant_vhost
from workbench.messaging.codec import decode_or_raw, encode_body
from workbench.messaging.rabbitmq_members import (
    RabbitConsumer,
    RabbitSubscription,
    user_headers,
)

__all__ = ["RabbitMqBus"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_CLOSED = object()
_BATCH = 1000
_DEDUPE_WINDOW = 10_000
#: the server refused us (credentials, or no access to the vhost: Connection.Close on open)
_AUTH_ERRORS = (
    aio_pika.exceptions.ProbableAuthenticationError,
    aiormq.exceptions.ConnectionNotAllowed,
    aiormq.exceptions.InvalidFrameError,
)


def _vhost_url(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(vhost, safe="")).geturl()


class _Step:
    """Work the publishing pump does in order with the messages around it."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self.run = run


class _Encoded:
    __slots__ = ("body", "headers", "id", "key", "topic")

    def __init__(self, message: OutgoingMessage) -> None:
        validate_name("topic", message.topic)
        self.topic = message.topic
        self.key = message.key
        self.id = message.id
        self.headers: dict[str, Any] = dict(message.headers)
        self.body = encode_body(message.body)


class RabbitMqBus(MessageBus):
    """A tenant's bus on the RabbitMQ server of ``url`` (vhost ``wb-<tenant>``).

    ``tenant=None`` uses the vhost of ``url`` itself. ``connect_timeout``: how long an operation
    waits for a connection before raising :class:`BackendUnavailable`.
    """

    wire_bodies = True  # bodies go through encode_body

    def __init__(
        self,
        url: str,
        tenant: str | None = None,
        *,
        connect_timeout: float = 10.0,
        max_backoff: float = 10.0,
        confirm_timeout: float = 30.0,
        outbox_limit: int = 100_000,
    ) -> None:
        self.tenant = tenant
        self.vhost = tenant_vhost(tenant) if tenant else (urlsplit(url).path.lstrip("/") or "/")
        self._url = _vhost_url(url, self.vhost) if tenant else url
        self.shown_url = redact_url(self._url)
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.confirm_timeout = confirm_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"bus-{self.vhost}", daemon=True
        )
        self._thread.start()
        self._outbox: deque[tuple[list[_Encoded], asyncio.Future[None] | None] | _Step] = deque()
        self._outbox_limit = outbox_limit
        self._closing = False
        self._members: set[RabbitConsumer | RabbitSubscription] = set()
        self.reconnects = 0
        # made here, not in _setup: a subscribe() right after the constructor queues its step
        # (which sets it) on the bus loop before _setup's first step has run there
        self._wake_pump = asyncio.Event()
        self._run(self._setup())

    # ---- the bus thread ------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _on_bus(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._run(coro))

    async def _setup(self) -> None:
        self._connected = asyncio.Event()
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._error: BaseException | None = None
        self._fatal = False
        self._supervisor = asyncio.ensure_future(self._supervise())
        self._pump_task = asyncio.ensure_future(self._pump())

    async def _supervise(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                conn = await aio_pika.connect(self._url, timeout=self.connect_timeout)
            except _AUTH_ERRORS as exc:
                self._error, self._fatal = exc, True
                log.error("bus %s refused the connection: %s", self.shown_url, exc)
                self._connected.set()  # wakes waiters, which raise
                return
            except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
                self._error = exc
                log.warning(
                    "bus %s unreachable (%s); retrying in %.1f s", self.shown_url, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            delay = 0.1
            lost = asyncio.Event()
            conn.close_callbacks.add(lambda *_args, lost=lost: lost.set())
            try:
                self._channel = await conn.channel(publisher_confirms=True)
                self._conn, self._declared = conn, set()
                for member in list(self._members):
                    await member.start(conn)
            except (OSError, aiormq.exceptions.AMQPError) as exc:
                self._error = exc
                log.warning("bus %s: setting up after connecting failed: %s", self.shown_url, exc)
                with contextlib.suppress(Exception):
                    await conn.close()
                await asyncio.sleep(delay)
                continue
            self._error = None
            self._connected.set()
            self._wake_pump.set()
            await lost.wait()
            self._connected.clear()
            self._conn = self._channel = None
            if not self._closing:
                self.reconnects += 1
                log.warning("bus %s: connection lost; reconnecting", self.shown_url)

    async def connection(self) -> AbstractConnection:
        """The live connection (waits up to ``connect_timeout`` for one)."""
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
        except TimeoutError:
            raise BackendUnavailable(
                f"RabbitMQ at {self.shown_url} is unreachable ({self._error}); check the bus URL "
                "(WORKBENCH_BUS_URL) and that the server runs"
            ) from None
        if self._fatal or self._conn is None:
            raise BackendUnavailable(
                f"RabbitMQ at {self.shown_url} refused the connection ({self._error}); check the "
                f"user's password and its permissions on vhost {self.vhost!r}"
            )
        return self._conn

    async def _exchange(self, topic: str) -> None:
        if topic not in self._declared:
            if self._channel is None:
                await self.connection()
            assert self._channel is not None
            await self._channel.declare_exchange(topic, aio_pika.ExchangeType.TOPIC, durable=True)
            self._declared.add(topic)

    # ---- publishing ----------------------------------------------------------------------

    async def _pump(self) -> None:
        while not (self._closing and not self._outbox):
            if not self._outbox:
                self._wake_pump.clear()
                await self._wake_pump.wait()
                continue
            if isinstance(self._outbox[0], _Step):
                step = self._outbox.popleft()
                assert isinstance(step, _Step)
                await step.run()
                continue
            batch: list[_Encoded] = []
            waiters: list[asyncio.Future[None]] = []
            while self._outbox and len(batch) < _BATCH and not isinstance(self._outbox[0], _Step):
                entry = self._outbox.popleft()
                assert not isinstance(entry, _Step)
                messages, waiter = entry
                batch.extend(messages)
                if waiter is not None:
                    waiters.append(waiter)
            error: BaseException | None = None
            try:
                await self._send(batch)
            except Exception as exc:  # the pump never dies: the error goes to the publishers
                error = exc
                if not waiters:
                    log.error("bus %s dropped %d messages: %s", self.shown_url, len(batch), exc)
            for waiter in waiters:
                if not waiter.done():
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(_unavailable(self.shown_url, error))

    async def _send(self, batch: list[_Encoded]) -> None:
        if not batch:
            return
        await self.connection()
        for topic in {m.topic for m in batch}:
            await self._exchange(topic)
        if self._channel is None:
            raise BackendUnavailable(f"RabbitMQ at {self.shown_url}: the connection dropped")
        underlay = await self._channel.get_underlay_channel()
        now = datetime.now(UTC)
        futures = [
            asyncio.ensure_future(
                underlay.basic_publish(
                    m.body,
                    exchange=m.topic,
                    routing_key=m.key,
                    properties=aiormq.spec.Basic.Properties(
                        message_id=m.id,
                        headers=m.headers,
                        delivery_mode=2,
                        content_type="application/json",
                        timestamp=now,
                    ),
                    timeout=self.confirm_timeout,
                )
            )
            for m in batch
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise BackendUnavailable(f"RabbitMQ did not confirm a message: {result!r}")
            if not isinstance(result, Basic.Ack):
                raise BackendUnavailable(f"RabbitMQ refused a message ({result!r})")

    def _enqueue(self, messages: list[_Encoded], waiter: asyncio.Future[None] | None) -> None:
        if waiter is None and len(self._outbox) >= self._outbox_limit:
            self._outbox.popleft()
            log.error("bus %s: outbox full, dropped the oldest messages", self.shown_url)
        self._outbox.append((messages, waiter))
        self._wake_pump.set()

    def publish(
        self,
        topic: str,
        message: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        encoded = _Encoded(
            OutgoingMessage(
                topic, message, key, message_id or new_message_id(), dict(headers or {})
            )
        )
        self._loop.call_soon_threadsafe(self._enqueue, [encoded], None)

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> None:
        encoded = [_Encoded(m) for m in messages]
        if encoded:
            self._loop.call_soon_threadsafe(self._enqueue, encoded, None)

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        encoded = [_Encoded(m) for m in messages]
        if encoded:
            await self._on_bus(self._confirmed(encoded))

    async def _confirmed(self, encoded: list[_Encoded]) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._enqueue(encoded, waiter)
        await waiter

    # ---- subscriptions and groups --------------------------------------------------------

    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        validate_name("topic", topic)
        subscription = RabbitSubscription(self, topic, pattern)

        async def join() -> None:
            try:
                await self._join(subscription)
            except Exception as exc:  # reported to the subscriber when it iterates
                subscription.fail(_unavailable(self.shown_url, exc))

        # queued in the pump: messages this bus publishes after subscribe() returns are sent
        # once the subscription's queue is bound, so it receives them; the caller never blocks
        self._loop.call_soon_threadsafe(self._enqueue_step, _Step(join))
        return subscription

    def _enqueue_step(self, step: _Step) -> None:
        self._outbox.append(step)
        self._wake_pump.set()

    async def _join(self, member: RabbitConsumer | RabbitSubscription) -> None:
        conn = await self.connection()
        self._members.add(member)
        await member.start(conn)

    async def _leave(self, member: RabbitConsumer | RabbitSubscription) -> None:
        self._members.discard(member)
        await member.stop()

    async def declare_group(
        self, channel: AbstractChannel, topic: str, group: str, pattern: str
    ) -> aio_pika.abc.AbstractQueue:
        """Declare group ``group`` (and its dead-letter queue) on ``channel``; its queue."""
        await self._exchange(topic)
        try:
            queue = await channel.declare_queue(
                f"g.{group}",
                durable=True,
                # RabbitMQ compares this argument on every declaration: it pins the binding
                arguments={
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": f"{topic} {pattern}",
                },
            )
        except aiormq.exceptions.ChannelPreconditionFailed:
            raise ValidationError(
                f"group {group!r} already consumes another topic or pattern, not {topic!r} with "
                f"{pattern!r}: use another group name"
            ) from None
        await queue.bind(topic, routing_key=pattern)
        await channel.declare_queue(f"dlq.{group}", durable=True)
        return queue

    async def _ensure_group(self, topic: str, group: str, pattern: str) -> None:
        conn = await self.connection()
        channel = await conn.channel()
        try:
            await self.declare_group(channel, topic, group, pattern)
        finally:
            if not channel.is_closed:
                await channel.close()

    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None:
        validate_name("topic", topic)
        validate_name("group", group)
        await self._on_bus(self._ensure_group(topic, group, pattern))

    def consume(
        self,
        topic: str,
        pattern: str = "#",
        *,
        group: str,
        prefetch: int = 100,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> Consumer:
        validate_name("topic", topic)
        validate_name("group", group)
        return RabbitConsumer(self, topic, pattern, group, prefetch, max_deliveries)

    async def _inspect(self, name: str) -> int:
        conn = await self.connection()
        channel = await conn.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise ValidationError(
                f"there is no group {name.split('.', 1)[1]!r}: create it with ensure_group or "
                "consume"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return int(queue.declaration_result.message_count or 0)

    async def pending(self, topic: str, group: str) -> int:
        validate_name("group", group)
        return await self._on_bus(self._inspect(f"g.{group}"))

    async def _browse(self, group: str, limit: int) -> list[DeadLetter]:
        await self._inspect(f"g.{group}")
        conn = await self.connection()
        channel = await conn.channel()
        out: list[DeadLetter] = []
        try:
            queue = await channel.declare_queue(f"dlq.{group}", durable=True)
            while len(out) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                out.append(
                    DeadLetter(
                        str(headers.get("x-wb-topic", "")),
                        str(headers.get("x-wb-key", "")),
                        message.message_id or "",
                        decode_or_raw(message.body),
                        str(headers.get("x-wb-reason", "")),
                        int(str(headers.get("x-wb-deliveries", 1))),
                        user_headers(headers),
                        message.timestamp or datetime.now(UTC),
                    )
                )
        finally:
            await channel.close()  # unacked: every message goes back in place
        return out

    async def dead_letters(self, topic: str, group: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_name("group", group)
        return await self._on_bus(self._browse(group, limit))

    async def bury(
        self,
        message: AbstractIncomingMessage,
        group: str,
        where: tuple[str, str],
        reason: str,
        deliveries: int,
    ) -> None:
        """Move ``message`` to the group's dead-letter queue (confirmed), then ack it.

        ``where``: the message's original topic and routing key."""
        extra = {
            "x-wb-reason": reason[:1000],
            "x-wb-deliveries": deliveries,
            "x-wb-topic": where[0],
            "x-wb-key": where[1],
        }
        await self.republish(message, f"dlq.{group}", extra)
        await message.ack()

    async def republish(
        self, message: AbstractIncomingMessage, queue: str, extra: Mapping[str, Any]
    ) -> None:
        assert self._channel is not None
        underlay = await self._channel.get_underlay_channel()
        headers = {**dict(message.headers or {}), **extra}
        confirmation = await underlay.basic_publish(
            message.body,
            exchange="",
            routing_key=queue,
            properties=aiormq.spec.Basic.Properties(
                message_id=message.message_id,
                headers=headers,
                delivery_mode=2,
                content_type="application/json",
                timestamp=message.timestamp or datetime.now(UTC),
            ),
            timeout=self.confirm_timeout,
        )
        if not isinstance(confirmation, Basic.Ack):
            raise BackendUnavailable(f"RabbitMQ refused to requeue message {message.message_id}")

    # ---- closing -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake_pump.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._pump_task, 5)
        for member in list(self._members):
            with contextlib.suppress(Exception):
                await self._leave(member)
        self._supervisor.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        for _ in range(3):
            await asyncio.sleep(0)  # let the client library's close callbacks run
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._closing or not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._run(self._shutdown()).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _unavailable(shown: str, error: BaseException) -> BackendUnavailable:
    if isinstance(error, BackendUnavailable):
        return error
    return BackendUnavailable(f"RabbitMQ at {shown} did not confirm the messages: {error!r}")
