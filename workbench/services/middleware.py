"""The one ASGI middleware of a service: request id, access log, metrics, last-resort errors.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so streaming responses stay streaming and
the per-request cost stays a few microseconds.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.services.context import request_id_var, tenant_var
from workbench.services.errors import internal_error_response
from workbench.services.metrics import UNMATCHED_ROUTE, ServiceMetrics

__all__ = ["REQUEST_ID_HEADER", "RequestMiddleware"]

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("workbench.services.access")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/revocations"})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # a Mount (static files) records no route object; use its prefix
    root = scope.get("root_path", "")
    app_root = scope.get("app_root_path", "")
    if isinstance(root, str) and root and root != app_root:
        return root[len(app_root) :] + "/{path}"
    return UNMATCHED_ROUTE


class RequestMiddleware:
    """Gives every request an id (``X-Request-ID``, taken from the client when well-formed),
    logs one access line, records metrics, and answers unexpected errors with a bare 500."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        id_token = request_id_var.set(request_id)
        tenant_token = tenant_var.set(None)
        status = 500 if scope["type"] == "http" else 101
        started = False
        header_value = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", header_value))
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.close" and not started:
                status = 403 if message.get("code") == 1008 else status
            await send(message)

        begin = time.perf_counter()
        self.metrics.started()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if scope["type"] != "http" or started:
                raise
            response = internal_error_response(exc)
            status = 500
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - begin
            route = _route_template(scope)
            method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
            self.metrics.observe(method, route, status, elapsed)
            # probes and polls (health, metrics scrapes, the revocation list every second) log
            # at DEBUG when they succeed: the access log shows what people and programs do
            level = (
                logging.DEBUG
                if status < 400 and scope.get("path") in _QUIET_PATHS
                else logging.INFO
            )
            if access_log.isEnabledFor(level):
                extra: dict[str, Any] = {
                    "request_id": request_id,
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
                tenant = tenant_var.get()
                if tenant is not None:
                    extra["tenant"] = tenant
                access_log.log(
                    level,
                    "%s %s %s %.1fms",
                    method,
                    scope.get("path"),
                    status,
                    elapsed * 1000,
                    extra=extra,
                )
            tenant_var.reset(tenant_token)
            request_id_var.reset(id_token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None
