"""An in-process message bus on asyncio queues (one process; no persistence)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from workbench.messaging.base import MessageBus, Subscription

__all__ = ["LocalMessageBus"]

_CLOSED = object()


class _LocalSubscription(Subscription):
    def __init__(self, bus: LocalMessageBus, topic: str, maxsize: int) -> None:
        self._bus = bus
        self.topic = topic
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.closed = False

    def deliver(self, message: Any) -> None:
        """Runs on the subscriber's loop."""
        if self.closed:
            return
        if self.queue.full():
            # A subscriber that does not keep up loses the oldest message, never blocks others.
            self.queue.get_nowait()
        self.queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            message = await self.queue.get()
            if message is _CLOSED:
                return
            yield message

    async def close(self) -> None:
        if not self.closed:
            self._bus._remove(self)
            self.closed = True
            self.queue.put_nowait(_CLOSED) if not self.queue.full() else None


class LocalMessageBus(MessageBus):
    """Delivers messages to subscribers in this process. Thread-safe publish.

    ``maxsize`` bounds each subscriber's queue; a slow subscriber drops its oldest messages.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[_LocalSubscription]] = {}

    def publish(self, topic: str, message: Any) -> None:
        with self._lock:
            targets = list(self._subscribers.get(topic, ()))
        for subscription in targets:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is subscription.loop:
                subscription.deliver(message)
            elif not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(subscription.deliver, message)

    def subscribe(self, topic: str) -> Subscription:
        subscription = _LocalSubscription(self, topic, self._maxsize)
        with self._lock:
            self._subscribers.setdefault(topic, []).append(subscription)
        return subscription

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
