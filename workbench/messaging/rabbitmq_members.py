"""Consumers and subscriptions of :class:`~workbench.messaging.rabbitmq.RabbitMqBus`.

Each runs its AMQP side (channel, queue, basic.consume) on the bus's thread and hands messages
to the event loop it was created on; :meth:`start` is called again after every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from workbench.messaging.base import Consumer, Delivery
from workbench.messaging.codec import decode_body, decode_or_raw
from workbench.messaging.queued import QueuedSubscription

__all__ = ["MemberBus", "RabbitConsumer", "RabbitSubscription", "user_headers"]

T = TypeVar("T")

_CLOSED = object()


#: acked message ids a consumer remembers for dedupe
DEDUPE_WINDOW = 10_000
_INTERNAL = frozenset({"x-wb-deliveries", "x-wb-reason", "x-wb-topic", "x-wb-key"})


def user_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """The message's own headers (without the bus's bookkeeping ``x-wb-*``)."""
    return {k: str(v) for k, v in headers.items() if k not in _INTERNAL}


class MemberBus(Protocol):
    """What members need of :class:`workbench.messaging.rabbitmq.RabbitMqBus` (a protocol, so
    this module does not import the bus that imports it)."""

    async def _on_bus(self, coro: Coroutine[Any, Any, T]) -> T: ...

    async def _exchange(self, topic: str) -> None: ...

    async def _join(self, member: RabbitConsumer | RabbitSubscription) -> None: ...

    async def _leave(self, member: RabbitConsumer | RabbitSubscription) -> None: ...

    async def declare_group(
        self, channel: AbstractChannel, topic: str, group: str, pattern: str
    ) -> AbstractQueue: ...

    async def bury(
        self,
        message: AbstractIncomingMessage,
        group: str,
        where: tuple[str, str],
        reason: str,
        deliveries: int,
    ) -> None: ...

    async def republish(
        self, message: AbstractIncomingMessage, queue: str, extra: Mapping[str, Any]
    ) -> None: ...


async def _close(channel: AbstractChannel | None) -> None:
    if channel is not None and not channel.is_closed:
        with contextlib.suppress(Exception):
            await channel.close()


class RabbitSubscription(QueuedSubscription):
    """A transient subscription: an exclusive auto-deleted queue bound with the pattern."""

    def __init__(self, bus: MemberBus, topic: str, pattern: str, maxsize: int = 10_000) -> None:
        super().__init__(topic, pattern, maxsize)
        self.bus = bus
        self.channel: AbstractChannel | None = None

    async def start(self, conn: AbstractConnection) -> None:
        await _close(self.channel)
        await self.bus._exchange(self.topic)
        self.channel = await conn.channel()
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.topic, routing_key=self.pattern)
        await queue.consume(self._on_message, no_ack=True)

    async def stop(self) -> None:
        await _close(self.channel)
        self.channel = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.deliver_threadsafe(decode_or_raw(message.body))

    async def detach(self) -> None:
        with contextlib.suppress(Exception):
            await self.bus._on_bus(self.bus._leave(self))


class RabbitConsumer(Consumer):
    """A member of group ``g.<group>``: basic.consume with ``prefetch`` unacked messages."""

    def __init__(
        self,
        bus: MemberBus,
        topic: str,
        pattern: str,
        group: str,
        prefetch: int,
        max_deliveries: int,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.pattern = pattern
        self.group = group
        self.prefetch = max(1, prefetch)
        self.max = max(1, max_deliveries)
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.channel: AbstractChannel | None = None
        self.acked: OrderedDict[str, None] = OrderedDict()  # touched on the bus thread only
        self.started = False
        self.closed = False

    async def start(self, conn: AbstractConnection) -> None:
        await _close(self.channel)
        self.channel = await conn.channel()
        await self.channel.set_qos(prefetch_count=self.prefetch)
        queue = await self.bus.declare_group(self.channel, self.topic, self.group, self.pattern)
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        await _close(self.channel)  # the broker requeues what this member left unacked
        self.channel = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        headers = dict(message.headers or {})
        before = int(str(headers.get("x-wb-deliveries", 0))) + (1 if message.redelivered else 0)
        topic = str(headers.get("x-wb-topic") or message.exchange or self.topic)
        key = str(headers["x-wb-key"]) if "x-wb-key" in headers else (message.routing_key or "")
        message_id = message.message_id or ""
        try:
            if message_id and message_id in self.acked:
                await message.ack()
                return
            if before >= self.max:
                reason = f"delivered {before} times without ack"
                await self.bus.bury(message, self.group, (topic, key), reason, before)
                return
            try:
                body = decode_body(message.body)
            except ValueError as exc:
                reason = f"undecodable body: {exc}"
                await self.bus.bury(message, self.group, (topic, key), reason, before + 1)
                return
        except (aiormq.exceptions.AMQPError, RuntimeError):
            return  # the channel went away: the broker redelivers
        delivery = Delivery(
            topic=topic,
            key=key,
            id=message_id,
            body=body,
            headers=user_headers(headers),
            delivery_count=before + 1,
            timestamp=message.timestamp or datetime.now(UTC),
            settle=functools.partial(self._settle, message, topic, key, before + 1),
        )
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, delivery)

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        topic: str,
        key: str,
        count: int,
        action: str,
        requeue: bool,
        reason: str,
    ) -> None:
        await self.bus._on_bus(
            self._settle_on_bus(message, topic, key, count, action, requeue, reason)
        )

    async def _settle_on_bus(
        self,
        message: AbstractIncomingMessage,
        topic: str,
        key: str,
        count: int,
        action: str,
        requeue: bool,
        reason: str,
    ) -> None:
        where = (topic, key)
        try:
            if action == "ack":
                if message.message_id:
                    self.acked[message.message_id] = None
                    if len(self.acked) > DEDUPE_WINDOW:
                        self.acked.popitem(last=False)
                await message.ack()
            elif not requeue:
                await self.bus.bury(message, self.group, where, reason, count)
            elif count >= self.max:
                why = f"nacked on delivery {count} of {self.max}: {reason}"
                await self.bus.bury(message, self.group, where, why, count)
            else:
                extra = {"x-wb-deliveries": count, "x-wb-topic": topic, "x-wb-key": key}
                await self.bus.republish(message, f"g.{self.group}", extra)
                await message.ack()
        except (aiormq.exceptions.AMQPError, RuntimeError):
            pass  # its channel is gone: the broker hands the message out again

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Delivery]:
        if not self.started and not self.closed:
            self.started = True
            await self.bus._on_bus(self.bus._join(self))
        while not self.closed:
            item = await self.queue.get()
            if item is _CLOSED:
                return
            yield item

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.started:
            with contextlib.suppress(Exception):
                await self.bus._on_bus(self.bus._leave(self))
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSED)
