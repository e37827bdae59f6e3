"""Where GraphQL requests execute: a small thread pool, or inline on the event loop thread.

:class:`GraphQLPool` runs each request on one of a few execution threads, except request shapes
that last computed for less than :data:`INLINE_MAX_CPU_S` without waiting on I/O: those run right
on the event loop (a thread hop costs more than they do). A request function called inline raises
:class:`RunInPool` when it finds it must wait after all (a schema to build, a mutation).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["INLINE_MAX_CPU_S", "INLINE_MEMORY", "GraphQLPool", "RunInPool"]

T = TypeVar("T")

#: a GraphQL request that last took less CPU than this (and may run inline) runs on the event
#: loop thread
INLINE_MAX_CPU_S = 0.010
#: request shapes remembered for that decision
INLINE_MEMORY = 2048


class RunInPool(Exception):
    """Raised by a request function called with ``inline=True`` that must run in the pool after
    all (a schema to build, a mutation) before it has done anything."""


class GraphQLPool:
    """The GraphQL execution threads of a service and the inline decision per request shape.

    ``workers`` is small on purpose: execution holds the GIL, and many threads contending for it
    (plus the event loop) cost more than they overlap.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="graphql")
        #: request shape -> whether it may run on the event loop thread
        self._inline: dict[Hashable, bool] = {}

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func`` on an execution thread, with this request's context (request id, limits)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def run_request(
        self, key: Hashable, func: Callable[..., tuple[T, bool]], *args: Any, **kwargs: Any
    ) -> T:
        """``func(*args, inline=..., **kwargs)`` for one GraphQL request of shape ``key``.

        ``func`` returns its result and whether the request may run inline at all (a query
        reading only the embedded stores); a shape runs inline when its last run said so and
        took less than :data:`INLINE_MAX_CPU_S` of CPU. Unknown shapes, mutations and anything
        slow or remote stay in the pool (so a slow request cannot stall the event loop twice).
        """
        if self._inline.get(key):
            began = time.thread_time()
            try:
                result, inline_ok = func(*args, inline=True, **kwargs)
            except RunInPool:
                self._inline.pop(key, None)
            else:
                self._remember(key, inline_ok and time.thread_time() - began < INLINE_MAX_CPU_S)
                return result

        def pooled() -> T:
            began = time.thread_time()
            result, inline_ok = func(*args, inline=False, **kwargs)
            self._remember(key, inline_ok and time.thread_time() - began < INLINE_MAX_CPU_S)
            return result

        return await self.run(pooled)

    def _remember(self, key: Hashable, inline: bool) -> None:
        if inline:
            if len(self._inline) >= INLINE_MEMORY:
                self._inline.clear()
            self._inline[key] = True
        else:
            self._inline.pop(key, None)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
