"""The request-limits ASGI middleware of every service (installed by ``service_app``).

For each request it makes the service's :class:`~workbench.limits.Limits` current, together
with a :class:`~workbench.limits.Cancellation` that fires when the client goes away (watched once
the request body has been read and the request has run for :data:`WATCH_AFTER_S`) or when the
request ends; it refuses bodies over ``max_request_bytes`` (``graphql_max_body_bytes`` for
GraphQL) with 413, by ``Content-Length`` before reading and by counting while reading; and it
adds ``Retry-After`` to every 429 answer. Pure ASGI, a few microseconds per request.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.limits import Cancellation, Limits, use_limits
from workbench.services.errors import error_body

__all__ = ["WATCH_AFTER_S", "LimitsMiddleware"]

#: a request still running this long after its body was read gets its disconnect watched
WATCH_AFTER_S = 0.05
_GRAPHQL_PATH = re.compile(r"^/tenants/[^/]+/graphql/?$")


def _too_large(limit: int, setting: str) -> str:
    return (
        f"the request body exceeds the limit of {limit} bytes ({setting}); send less per "
        "request (split files, use variables and smaller pages)"
    )


class LimitsMiddleware:
    """See the module docstring. ``limits``: the service's (default: from the environment)."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits.from_settings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cancellation = Cancellation()
        with use_limits(self.limits, cancellation):
            try:
                if scope["type"] == "websocket":
                    await self.app(scope, receive, send)
                else:
                    await self._http(scope, receive, send, cancellation)
            finally:
                cancellation.cancel("the request ended")

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, cancellation: Cancellation
    ) -> None:
        limits = self.limits
        if _GRAPHQL_PATH.match(scope.get("path", "")):
            limit, setting = limits.graphql_max_body_bytes, "WORKBENCH_GRAPHQL_MAX_BODY_BYTES"
            if len(scope.get("query_string", b"")) > limit:
                await _refuse(scope, receive, send, 414, _too_large(limit, setting))
                return
        else:
            limit, setting = limits.max_request_bytes, "WORKBENCH_MAX_REQUEST_BYTES"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, _too_large(limit, setting))
            return
        watcher = _DisconnectWatcher(receive, cancellation, limit, setting)
        retry_after = str(limits.retry_after_s).encode()

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429:
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", retry_after))
                    message = {**message, "headers": headers}
            await send(message)

        if declared == 0 or (declared is None and not _has_body(scope)):
            watcher.body_done()
        try:
            await self.app(scope, watcher.receive, send_with_retry_after)
        finally:
            watcher.close()


class _DisconnectWatcher:
    """The app's ``receive``: counts body bytes; once the body is in, a task waits for
    ``http.disconnect`` (started late, so short requests never pay for it)."""

    __slots__ = (
        "_arrived",
        "_buffer",
        "_cancellation",
        "_disconnect",
        "_limit",
        "_receive",
        "_setting",
        "_size",
        "_task",
        "_timer",
    )

    def __init__(
        self, receive: Receive, cancellation: Cancellation, limit: int, setting: str
    ) -> None:
        self._receive = receive
        self._cancellation = cancellation
        self._limit = limit
        self._setting = setting
        self._size = 0
        self._buffer: list[Message] = []
        self._disconnect: Message | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._arrived: asyncio.Event | None = None

    def body_done(self) -> None:
        if self._timer is None and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._task is None and self._disconnect is None:
            self._arrived = asyncio.Event()
            self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._disconnect = message
                self._cancellation.cancel()
            else:  # the (empty) body of a request the app had not read yet
                self._buffer.append(message)
            assert self._arrived is not None
            self._arrived.set()
            if self._disconnect is not None:
                return

    async def receive(self) -> Message:
        while True:
            if self._buffer:
                return self._buffer.pop(0)
            if self._disconnect is not None:
                return self._disconnect
            if self._task is None and self._timer is None:
                return await self._read()
            if self._timer is not None:
                self._timer.cancel()
                self._start()
            assert self._arrived is not None
            self._arrived.clear()
            await self._arrived.wait()

    async def _read(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limit:
                raise HTTPException(413, _too_large(self._limit, self._setting))
            if not message.get("more_body", False):
                self.body_done()
        elif message["type"] == "http.disconnect":
            self._disconnect = message
            self._cancellation.cancel()
        return message

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    code = "PAYLOAD_TOO_LARGE" if status == 413 else "URI_TOO_LONG"
    response: Any = JSONResponse(error_body(code, message), status, headers={"Connection": "close"})
    await response(scope, receive, send)
