"""Audit trail of the Asset Repository: every successful mutation, per tenant.

A pure ASGI middleware records, for each write request (POST/PUT/PATCH/DELETE) under
``/tenants/{tenantId}/`` that succeeded, who (the token's subject), when, what (method and route
template, plus the GraphQL mutation's root fields) and the request id, into the tenant's audit
log (:class:`workbench.identity.audit.AuditLog`, queryable with ``workbench audit --tenant T``
and the Identity service's API). GraphQL mutations, over HTTP and WebSocket alike, are recorded
by the GraphQL execution path
(:func:`workbench.services.asset_repository.graphql_execution.record_mutation`), not here.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.services.context import request_id_var

__all__ = ["AuditMiddleware", "note_principal"]

log = logging.getLogger("workbench.services.audit")

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: routes that change nothing although they are POSTs (queries, token exchange, validation), and
#: GraphQL (its mutations are recorded by the execution path)
_NOT_MUTATIONS = ("/graphql", "/playground/", "/ck/validate", "/entities/query")


def note_principal(scope: Scope, subject: str) -> None:
    """Remember who made the request (called where the token is verified)."""
    scope.setdefault("state", {})["audit_actor"] = subject


class AuditMiddleware:
    """Records successful mutations in the tenant's audit log (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, audit_log: Any) -> None:
        self.app = app
        self.audit_log = audit_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WRITES:
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status < 400:
            try:
                self._record(scope)
            except Exception:  # the request succeeded; a failing audit write must be seen
                log.exception("could not write the audit entry of %s", scope.get("path"))

    def _record(self, scope: Scope) -> None:
        state = scope.get("state") or {}
        tenant = state.get("tenant")
        if not tenant:
            return
        path = str(scope.get("path", ""))
        route = getattr(scope.get("route"), "path", path)
        if any(marker in path for marker in _NOT_MUTATIONS):
            return
        self.audit_log.record(
            tenant,
            actor=str(state.get("audit_actor") or "unknown"),
            action=f"{scope['method']} {route}",
            target=path,
            request_id=request_id_var.get(),
            details={},
        )
