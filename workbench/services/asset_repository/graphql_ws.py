"""GraphQL over WebSocket (``graphql-transport-ws``) at ``/tenants/{id}/graphql``.

The session authenticates with the ``connection_init`` payload's ``Authorization`` (or the
handshake's header) against the route's requirement
(:data:`~.graphql_execution.GRAPHQL_ACCESS`), and runs every operation through
the same authorization-and-execution path as HTTP (:mod:`.graphql_execution`):
operation scopes, tenant and audit alike.

A session never outlives its token: the token is checked again before every operation, before
every subscription event and once a second (expiry and revocation). When it is no longer
accepted the socket closes with ``4401`` (``4403`` when the caller lost the tenant). A client
refreshes its token without reconnecting by sending a ``ping`` whose payload carries the new
token, ``{"type": "ping", "payload": {"Authorization": "Bearer <new token>"}}``; the server
answers ``pong`` once the new token is in use (it must be for the same subject, and allow the
tenant).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from workbench.errors import Forbidden, Unauthenticated, WorkbenchError
from workbench.graphql.persisted import resolve_persisted
from workbench.services.access import TenantAccess, service_state
from workbench.services.asset_repository.graphql_execution import (
    GRAPHQL_ACCESS,
    GraphQLRequest,
    Outcome,
    execute,
    operation_kind,
    response_body,
    subscribe,
)
from workbench.services.asset_repository.workers import PrimaryForwarder, needs_primary

__all__ = ["PROTOCOL", "TOKEN_CHECK_INTERVAL_S", "router"]

log = logging.getLogger("workbench.services.graphql")

GRAPHQL_PATH = "/tenants/{tenantId}/graphql"
PROTOCOL = "graphql-transport-ws"
CONNECTION_INIT_TIMEOUT_S = 10.0
#: how often an open session checks its token again (expiry is met on time, revocation within
#: this plus the revocation list's polling interval)
TOKEN_CHECK_INTERVAL_S = 1.0

router = APIRouter(tags=["graphql"])


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _close_for(error: WorkbenchError) -> _Close:
    if isinstance(error, Unauthenticated):
        return _Close(4401, f"Unauthorized: {error.message}")
    if isinstance(error, Forbidden):
        return _Close(4403, f"Forbidden: {error.message}")
    return _Close(4404 if error.code == "NOT_FOUND" else 4400, error.message)


@router.websocket(GRAPHQL_PATH)
async def graphql_ws(websocket: WebSocket, tenantId: str) -> None:
    """Subscriptions, queries and mutations over the ``graphql-transport-ws`` protocol."""
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(4406, "Subprotocol not acceptable: use graphql-transport-ws")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    session = _Session(websocket, tenantId)
    try:
        await session.run()
    except _Close as close:
        await session.close(close)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away, or the watchdog closed the socket meanwhile
    finally:
        await session.stop()


class _Session:
    """One graphql-transport-ws connection: init/ack, then subscribe/next/complete."""

    def __init__(self, websocket: WebSocket, tenant_id: str) -> None:
        self.websocket = websocket
        self.tenant_id = tenant_id
        self.credentials: HTTPConnection = websocket
        self.access: TenantAccess | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.watchdog: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_text(json.dumps(message, separators=(",", ":")))

    async def receive(self) -> dict[str, Any]:
        text = await self.websocket.receive_text()
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            raise _Close(4400, "Invalid message received: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Close(4400, "Invalid message received: no type")
        return message

    async def close(self, close: _Close) -> None:
        async with self.send_lock:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.websocket.close(close.code, close.reason[:120])

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(self.receive(), CONNECTION_INIT_TIMEOUT_S)
        except TimeoutError:
            raise _Close(4408, "Connection initialisation timeout") from None
        if first["type"] != "connection_init":
            raise _Close(4400, "Invalid message received: expected connection_init")
        self.credentials = self._credentials(first.get("payload"))
        self.access = self.current_access()
        await self.send({"type": "connection_ack"})
        if service_state(self.websocket).needs_token:
            self.watchdog = asyncio.create_task(self._watch_token())
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "ping":
                await self._refresh(message.get("payload"))
                await self.send({"type": "pong"})
            elif kind == "pong":
                continue
            elif kind == "subscribe":
                self._subscribe(message)
            elif kind == "complete":
                task = self.operations.pop(str(message.get("id")), None)
                if task is not None:
                    task.cancel()
            elif kind == "connection_init":
                raise _Close(4429, "Too many initialisation requests")
            else:
                raise _Close(4400, f"Invalid message received: unknown type {kind!r}")

    # ---- the token ------------------------------------------------------------------------

    def _credentials(self, payload: Any) -> HTTPConnection:
        """The handshake, carrying the payload's ``Authorization`` (browsers cannot set
        headers on a WebSocket) when there is one."""
        if not isinstance(payload, Mapping):
            return self.credentials
        header = payload.get("Authorization") or payload.get("authorization")
        if not isinstance(header, str) or not header:
            return self.credentials
        headers = [(k, v) for k, v in self.websocket.scope["headers"] if k != b"authorization"]
        headers.append((b"authorization", header.encode("latin-1", "replace")))
        return HTTPConnection({**self.websocket.scope, "headers": headers})

    def current_access(self) -> TenantAccess:
        """The caller's access now (its token checked again: expiry, revocation, tenant);
        :class:`_Close` when the session must end."""
        try:
            return GRAPHQL_ACCESS.check(self.credentials, self.tenant_id)
        except WorkbenchError as error:
            raise _close_for(error) from None

    async def _refresh(self, payload: Any) -> None:
        """A ``ping`` carrying a new token: use it from now on."""
        credentials = self._credentials(payload)
        if credentials is self.credentials:
            return
        previous, self.credentials = self.credentials, credentials
        access = self.current_access()
        if self.access is not None and access.principal.subject != self.access.principal.subject:
            self.credentials = previous
            raise _Close(4403, "Forbidden: the new token is for another subject; reconnect")
        self.access = access

    async def _watch_token(self) -> None:
        """Close the socket (4401) as soon as the token is no longer accepted."""
        try:
            while True:
                expires_at = self.access.principal.expires_at if self.access else None
                wait = TOKEN_CHECK_INTERVAL_S
                if expires_at is not None:
                    wait = min(wait, max(expires_at - time.time(), 0.0) + 0.01)
                await asyncio.sleep(wait)
                self.access = self.current_access()
        except _Close as close:
            log.info("closing a GraphQL WebSocket: %s", close.reason)
            await self.close(close)

    # ---- operations -----------------------------------------------------------------------

    def _subscribe(self, message: dict[str, Any]) -> None:
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            raise _Close(4400, "Invalid message received: subscribe needs an id")
        if operation_id in self.operations:
            raise _Close(4409, f"Subscriber for {operation_id} already exists")
        access = self.access = self.current_access()  # every operation checks the token again
        task = asyncio.create_task(self._operation(operation_id, access, message.get("payload")))
        self.operations[operation_id] = task

    async def _operation(self, operation_id: str, access: TenantAccess, payload: Any) -> None:
        service = service_state(self.websocket)
        connection = self.websocket
        try:
            payload = resolve_persisted(access.tenant, payload)  # the tenant's allow-list, APQ
            request = GraphQLRequest.from_params(payload)
            kind = await operation_kind(connection, access, request)
            if kind is OperationType.SUBSCRIPTION:
                outcome = await subscribe(connection, access, request)
                if isinstance(outcome, Outcome):
                    await self._send_errors(operation_id, outcome.result.errors)
                    return
                await self._stream(operation_id, outcome)
            elif service.forwarder is not None and needs_primary(
                request.query, request.operation_name
            ):  # a worker of several: writes and stream data run in the primary (workers.py)
                await self._forwarded(operation_id, service.forwarder, payload)
                return
            else:
                done: Outcome = await service.pool.run_request(
                    (self.tenant_id, *request.shape), execute, connection, access, request
                )
                if done.request_error or (done.result.data is None and done.result.errors):
                    await self._send_errors(operation_id, done.result.errors)
                    return
                await self.send(
                    {"id": operation_id, "type": "next", "payload": response_body(done)}
                )
            await self.send({"id": operation_id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except _Close as close:
            await self.close(close)
        except WorkbenchError as error:
            await self._send_errors(
                operation_id,
                [GraphQLError(error.message, extensions={"code": error.code})],
            )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.operations.pop(operation_id, None)

    async def _forwarded(
        self, operation_id: str, forwarder: PrimaryForwarder, payload: Any
    ) -> None:
        """A query or mutation answered by the primary worker over HTTP, with this session's
        credentials (the primary checks them again)."""
        headers = [
            (k, v)
            for k, v in self.credentials.scope["headers"]
            if k in (b"authorization", b"cookie", b"x-request-id")
        ]
        headers.append((b"content-type", b"application/json"))
        status, _headers, content = await forwarder.send(
            "POST", self.websocket.url.path, headers, json.dumps(payload).encode()
        )
        body = json.loads(content) if content else {}
        if status != 200 or "data" not in body:
            errors = body.get("errors") or [{"message": f"the operation failed ({status})"}]
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.send({"id": operation_id, "type": "error", "payload": errors})
            return
        await self.send({"id": operation_id, "type": "next", "payload": body})
        await self.send({"id": operation_id, "type": "complete"})

    async def _stream(self, operation_id: str, results: AsyncIterator[ExecutionResult]) -> None:
        try:
            async for result in results:
                self.access = self.current_access()  # no event for a token no longer accepted
                body = response_body(Outcome(result))
                await self.send({"id": operation_id, "type": "next", "payload": body})
        finally:
            close = getattr(results, "aclose", None)
            if close is not None:
                await close()

    async def _send_errors(self, operation_id: str, errors: list[GraphQLError] | None) -> None:
        formatted = [e.formatted for e in errors or [GraphQLError("the operation failed")]]
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.send({"id": operation_id, "type": "error", "payload": formatted})

    async def stop(self) -> None:
        tasks = list(self.operations.values())
        if self.watchdog is not None:
            tasks.append(self.watchdog)
        self.operations.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
