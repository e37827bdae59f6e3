"""The transient subscription every adapter hands out: an asyncio queue on the subscriber's loop.

Adapters feed it with :meth:`QueuedSubscription.deliver` (on its loop) or
:meth:`QueuedSubscription.deliver_threadsafe`; a subscriber that does not keep up loses its
oldest messages and never blocks the others. Adapters override :meth:`detach` to stop feeding it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from workbench.messaging.base import Subscription

__all__ = ["QueuedSubscription"]

_CLOSED = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class QueuedSubscription(Subscription):
    """Bodies of ``topic`` whose keys match ``pattern``; create it in the subscriber's loop."""

    def __init__(self, topic: str, pattern: str, maxsize: int = 10_000) -> None:
        self.topic = topic
        self.pattern = pattern
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.closed = False

    def deliver(self, body: Any) -> None:
        """Queue ``body`` (call on the subscriber's loop)."""
        if self.closed:
            return
        if self.queue.full():
            self.queue.get_nowait()  # a slow subscriber loses its oldest message
        self.queue.put_nowait(body)

    def deliver_threadsafe(self, body: Any) -> None:
        """Queue ``body`` from any thread."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.deliver, body)

    def fail(self, error: BaseException) -> None:
        """The subscription broke: iteration raises ``error`` (any thread)."""
        self.deliver_threadsafe(_Failure(error))

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            body = await self.queue.get()
            if body is _CLOSED:
                return
            if isinstance(body, _Failure):
                raise body.error
            yield body

    async def detach(self) -> None:
        """Stop the adapter from feeding this subscription (override)."""

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.detach()
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSED)
