"""An in-process message bus on asyncio (one process; nothing survives a restart)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.errors import ValidationError
from workbench.messaging.base import (
    DEFAULT_MAX_DELIVERIES,
    Consumer,
    DeadLetter,
    Delivery,
    MessageBus,
    OutgoingMessage,
    Subscription,
    new_message_id,
    topic_matches,
    validate_name,
)
from workbench.messaging.queued import QueuedSubscription

__all__ = ["LocalMessageBus"]

#: acked ids a group remembers for dedupe
DEDUPE_WINDOW = 10_000


class _LocalSubscription(QueuedSubscription):
    def __init__(self, bus: LocalMessageBus, topic: str, pattern: str, maxsize: int) -> None:
        super().__init__(topic, pattern, maxsize)
        self._bus = bus

    async def detach(self) -> None:
        self._bus._remove(self)


@dataclass
class _Entry:
    message: OutgoingMessage
    timestamp: datetime
    count: int = 0


class _Group:
    def __init__(self, name: str, topic: str, pattern: str) -> None:
        self.name = name
        self.topic = topic
        self.pattern = pattern
        self.ready: deque[_Entry] = deque()
        self.unsettled = 0
        self.dead: list[DeadLetter] = []
        self.acked: OrderedDict[str, None] = OrderedDict()
        self.members: list[_LocalConsumer] = []

    def bury(self, entry: _Entry, reason: str) -> None:
        m = entry.message
        self.dead.append(DeadLetter(m.topic, m.key, m.id, m.body, reason, entry.count, m.headers))

    def remember(self, message_id: str) -> None:
        self.acked[message_id] = None
        if len(self.acked) > DEDUPE_WINDOW:
            self.acked.popitem(last=False)

    def wake(self) -> None:
        for member in self.members:
            member.wake()


class _LocalConsumer(Consumer):
    def __init__(
        self, bus: LocalMessageBus, group: _Group, prefetch: int, max_deliveries: int
    ) -> None:
        self._bus = bus
        self._group = group
        self._prefetch = max(1, prefetch)
        self._max = max(1, max_deliveries)
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._held: dict[int, _Entry] = {}
        self._closed = False

    def wake(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._iterate()

    def _take(self) -> Delivery | None:
        group = self._group
        with self._bus._lock:
            while not self._closed and group.ready and len(self._held) < self._prefetch:
                entry = group.ready.popleft()
                if entry.message.id in group.acked:
                    continue
                if entry.count >= self._max:
                    group.bury(entry, f"delivered {entry.count} times without ack")
                    continue
                entry.count += 1
                self._held[id(entry)] = entry
                group.unsettled += 1
                m = entry.message
                return Delivery(
                    topic=m.topic,
                    key=m.key,
                    id=m.id,
                    body=m.body,
                    headers=m.headers,
                    delivery_count=entry.count,
                    timestamp=entry.timestamp,
                    settle=functools.partial(self._settle, entry),
                )
        return None

    async def _iterate(self) -> AsyncIterator[Delivery]:
        while not self._closed:
            delivery = self._take()
            if delivery is not None:
                yield delivery
                continue
            self._event.clear()
            if self._take_possible():
                continue
            await self._event.wait()

    def _take_possible(self) -> bool:
        with self._bus._lock:
            return bool(self._group.ready) and len(self._held) < self._prefetch

    async def _settle(self, entry: _Entry, action: str, requeue: bool, reason: str) -> None:
        group = self._group
        with self._bus._lock:
            if self._held.pop(id(entry), None) is None:
                return  # returned to the group when this consumer closed
            group.unsettled -= 1
            if action == "ack":
                group.remember(entry.message.id)
            elif not requeue:
                group.bury(entry, reason)
            elif entry.count >= self._max:
                group.bury(entry, f"nacked on delivery {entry.count} of {self._max}: {reason}")
            else:
                group.ready.appendleft(entry)
        group.wake()

    async def close(self) -> None:
        group = self._group
        with self._bus._lock:
            if self._closed:
                return
            self._closed = True
            for entry in reversed(list(self._held.values())):
                group.ready.appendleft(entry)
            group.unsettled -= len(self._held)
            self._held.clear()
            group.members.remove(self)
        self._event.set()
        group.wake()


class LocalMessageBus(MessageBus):
    """Delivers messages to subscribers and groups in this process. Thread-safe publish.

    ``maxsize`` bounds each transient subscriber's queue; a slow subscriber drops its oldest
    messages. Groups keep every message until acked (in memory). ``tenant``: the tenant it serves
    (None when shared by tenants through :func:`~workbench.messaging.base.entity_topic` topics).
    """

    def __init__(self, maxsize: int = 10_000, *, tenant: str | None = None) -> None:
        self._maxsize = maxsize
        self.tenant = tenant
        self._lock = threading.RLock()
        self._subscribers: dict[str, list[_LocalSubscription]] = {}
        self._groups: dict[str, _Group] = {}

    def publish(
        self,
        topic: str,
        message: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._deliver(
            OutgoingMessage(
                topic, message, key, message_id or new_message_id(), dict(headers or {})
            )
        )

    def _deliver(self, message: OutgoingMessage) -> None:
        with self._lock:
            targets = [
                s
                for s in self._subscribers.get(message.topic, ())
                if topic_matches(s.pattern, message.key)
            ]
            groups = [
                g
                for g in self._groups.values()
                if g.topic == message.topic and topic_matches(g.pattern, message.key)
            ]
            now = datetime.now(UTC)
            for group in groups:
                if message.id not in group.acked:
                    group.ready.append(_Entry(message, now))
        for group in groups:
            group.wake()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for subscription in targets:
            if running is subscription.loop:
                subscription.deliver(message.body)
            elif not subscription.loop.is_closed():
                subscription.deliver_threadsafe(message.body)

    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        subscription = _LocalSubscription(self, topic, pattern, self._maxsize)
        with self._lock:
            self._subscribers.setdefault(topic, []).append(subscription)
        return subscription

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        for message in messages:
            self._deliver(message)

    def _group(self, topic: str, group: str, pattern: str) -> _Group:
        validate_name("topic", topic)
        validate_name("group", group)
        with self._lock:
            found = self._groups.get(group)
            if found is None:
                found = self._groups[group] = _Group(group, topic, pattern)
            elif (found.topic, found.pattern) != (topic, pattern):
                raise ValidationError(
                    f"group {group!r} already consumes {found.topic!r} with pattern "
                    f"{found.pattern!r}, not {topic!r} with {pattern!r}: use another group name"
                )
            return found

    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None:
        self._group(topic, group, pattern)

    def consume(
        self,
        topic: str,
        pattern: str = "#",
        *,
        group: str,
        prefetch: int = 100,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> Consumer:
        found = self._group(topic, group, pattern)
        consumer = _LocalConsumer(self, found, prefetch, max_deliveries)
        with self._lock:
            found.members.append(consumer)
        return consumer

    def _existing(self, topic: str, group: str) -> _Group:
        with self._lock:
            found = self._groups.get(group)
        if found is None or found.topic != topic:
            raise ValidationError(
                f"there is no group {group!r} on topic {topic!r}: create it with ensure_group "
                "or consume"
            )
        return found

    async def dead_letters(self, topic: str, group: str, *, limit: int = 100) -> list[DeadLetter]:
        found = self._existing(topic, group)
        with self._lock:
            return list(found.dead[:limit])

    async def pending(self, topic: str, group: str) -> int:
        found = self._existing(topic, group)
        with self._lock:
            return len(found.ready) + found.unsettled

    def subscriber_count(self, topic: str) -> int:
        with self._lock:
            return len(self._subscribers.get(topic, ()))

    def _remove(self, subscription: _LocalSubscription) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscription.topic, [])
            if subscription in subscribers:
                subscribers.remove(subscription)
            if not subscribers:
                self._subscribers.pop(subscription.topic, None)
