"""Resource limits of one request: sizes, GraphQL cost, time, cancellation, heavy-request slots.

The numbers come from the settings tree (``WORKBENCH_MAX_REQUEST_BYTES``, ``WORKBENCH_GRAPHQL_*``,
... see :class:`Limits`); the services' ASGI middleware (:mod:`workbench.services.limits`) makes
them the *current* limits of each request, together with the request's :class:`Cancellation`
(set when the client goes away or the request's time is up). Code deep in the stack (GraphQL
execution, runtime export) asks :func:`current_cancellation` whether to go on; nothing here
imports a web framework.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from workbench.errors import Cancelled, TimedOut, TooManyRequests

if TYPE_CHECKING:
    from workbench.settings import Settings

__all__ = [
    "Cancellation",
    "HeavySlots",
    "Limits",
    "current_cancellation",
    "current_limits",
    "default_limits",
    "use_limits",
]


@dataclass(frozen=True)
class Limits:
    """The limits of one request (defaults sized for a 2-core machine).

    Each field is the settings field of the same name (``WORKBENCH_<FIELD>``).
    """

    max_request_bytes: int = 64 * 2**20
    max_attribute_bytes: int = 2**20
    graphql_max_body_bytes: int = 2**20
    graphql_max_tokens: int = 20_000
    graphql_max_fields: int = 1_000
    graphql_max_depth: int = 20
    graphql_max_aliases: int = 100
    graphql_max_cost: int = 50_000
    graphql_default_page: int = 100
    graphql_timeout_s: float = 30.0
    export_timeout_s: float = 300.0
    heavy_cost: int = 10_000
    heavy_per_tenant: int = 2
    retry_after_s: int = 5

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Limits:
        """The limits configured in ``settings`` (default: the environment's)."""
        from workbench.settings import Settings

        source = settings or Settings()
        return cls(**{f.name: getattr(source, f.name) for f in fields(cls)})


_limits_var: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "workbench_limits", default=None
)


@functools.cache
def default_limits() -> Limits:
    """The process's limits outside a service request (read from the environment once)."""
    return Limits.from_settings()


def current_limits() -> Limits | None:
    """The limits of the service request being handled, or None outside a service request
    (in-process use: only the input size limits of :func:`default_limits` apply there)."""
    return _limits_var.get()


@contextmanager
def use_limits(limits: Limits | None, cancellation: Cancellation | None = None) -> Iterator[None]:
    """Make ``limits`` (and ``cancellation``) current for the code run inside."""
    token = _limits_var.set(limits)
    cancel_token = _cancellation_var.set(cancellation)
    try:
        yield
    finally:
        _cancellation_var.reset(cancel_token)
        _limits_var.reset(token)


class Cancellation:
    """Whether the work of a request should stop: the client went away (:meth:`cancel`) or its
    deadline passed. Thread-safe; work checks it with :meth:`check` at convenient points."""

    __slots__ = ("_event", "_parent", "deadline", "reason", "what")

    def __init__(self, parent: Cancellation | None = None) -> None:
        self._parent = parent
        self._event = threading.Event()
        self.deadline: float | None = None
        self.reason = ""
        self.what = ""

    def cancel(self, reason: str = "the client closed the connection") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def child(self) -> Cancellation:
        """A cancellation of part of this work (one GraphQL operation of a WebSocket): cancelled
        with this one, with a deadline of its own."""
        return Cancellation(self)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def expired(self) -> bool:
        """True when the deadline passed (or the request was cancelled)."""
        return (
            self.cancelled
            or (self.deadline is not None and time.monotonic() > self.deadline)
            or (self._parent is not None and self._parent.expired())
        )

    @contextmanager
    def limit_time(self, seconds: float, what: str) -> Iterator[None]:
        """Give the work inside at most ``seconds`` (``what`` names it and its setting)."""
        previous, previous_what = self.deadline, self.what
        deadline = time.monotonic() + seconds
        self.deadline = deadline if previous is None else min(previous, deadline)
        self.what = what
        try:
            yield
        finally:
            self.deadline, self.what = previous, previous_what

    def check(self) -> None:
        """Raise :class:`Cancelled` or :class:`TimedOut` when the work should stop."""
        if self._parent is not None:
            self._parent.check()
        if self._event.is_set():
            raise Cancelled(f"the request was cancelled: {self.reason}")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimedOut(
                f"{self.what or 'the request'} took longer than its time limit and was "
                "stopped; ask for less (smaller pages, fewer nested levels) or raise the limit"
            )


_cancellation_var: contextvars.ContextVar[Cancellation | None] = contextvars.ContextVar(
    "workbench_cancellation", default=None
)


def current_cancellation() -> Cancellation | None:
    """The current request's :class:`Cancellation` (None outside a service request)."""
    return _cancellation_var.get()


class HeavySlots:
    """At most ``per_tenant`` heavy requests (exports, large pages, costly queries) of one tenant
    at a time in this process; one more is refused with :class:`TooManyRequests` (HTTP 429 with
    ``Retry-After``) rather than queued, so heavy work cannot starve everything else."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    def running(self, tenant_id: str) -> int:
        with self._lock:
            return self._running.get(tenant_id, 0)

    @contextmanager
    def hold(self, tenant_id: str, what: str, limits: Limits) -> Iterator[None]:
        """Hold one of ``tenant_id``'s heavy slots while the block runs."""
        with self._lock:
            running = self._running.get(tenant_id, 0)
            if running >= limits.heavy_per_tenant:
                raise TooManyRequests(
                    f"tenant {tenant_id!r} already runs {running} heavy requests (the limit, "
                    f"WORKBENCH_HEAVY_PER_TENANT={limits.heavy_per_tenant}); {what} was not "
                    f"started: retry in {limits.retry_after_s} s",
                    retry_after=limits.retry_after_s,
                )
            self._running[tenant_id] = running + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running.get(tenant_id, 1) - 1
                if left > 0:
                    self._running[tenant_id] = left
                else:
                    self._running.pop(tenant_id, None)


#: the heavy-request slots of this process (one per process: the limit is per machine share)
heavy_slots = HeavySlots()
