"""GraphQL over HTTP and over WebSocket (``graphql-transport-ws``) at ``/tenants/{id}/graphql``.

The transport is deliberately thin: it authenticates, picks the tenant's current schema from the
:class:`~workbench.graphql.SchemaCache` (rebuilt when any process changed the tenant's model) and
hands the request to :class:`~workbench.graphql.TenantSchema`, whose documents are parsed and
validated once per query text. Requests in flight keep the schema they started with.

Errors the transport itself raises (no or bad token, unknown tenant, unreadable body) answer with
the matching HTTP status and a body that is both a GraphQL response (``errors`` with
``extensions.code``) and the services' error shape (``code``, ``message``, ``details``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from workbench.errors import Forbidden, Unauthenticated, ValidationError, WorkbenchError
from workbench.services.access import TenantAccess, resolve_tenant, service_state
from workbench.services.asset_repository import RunInPool
from workbench.services.audit import note_graphql_mutation
from workbench.services.auth import CK_IMPORT_SCOPE, READ_SCOPE, STREAM_WRITE_SCOPE, WRITE_SCOPE
from workbench.services.context import current_request_id
from workbench.services.errors import status_for

if TYPE_CHECKING:
    from workbench.graphql import TenantSchema

__all__ = ["GRAPHQL_PATH", "router"]

log = logging.getLogger("workbench.services.graphql")

GRAPHQL_PATH = "/tenants/{tenantId}/graphql"
PROTOCOL = "graphql-transport-ws"
CONNECTION_INIT_TIMEOUT_S = 10.0

router = APIRouter(tags=["graphql"])


# ---- HTTP ----------------------------------------------------------------------------------


def _error_response(error: WorkbenchError) -> JSONResponse:
    status = status_for(error)
    body = {
        "errors": [{"message": error.message, "extensions": {"code": error.code}}],
        "code": error.code,
        "message": error.message,
        "details": [{"message": d.message, "location": d.location} for d in error.details],
        "requestId": current_request_id(),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status, headers=headers)


def _result_body(result: ExecutionResult) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    body["data"] = result.data
    return body


class _JsonBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # what orjson does not encode (ints beyond 64 bits, odd keys)
            return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(body: bytes) -> Any:
    """A JSON request body; the standard library's reading (and errors) for anything orjson
    rejects (NaN, huge integers, UTF-16, ...)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


#: top-level query fields served from memory and the embedded entity store only (streamData may
#: reach a remote stream store)
_LOCAL_ROOT_FIELDS = frozenset({"runtime", "constructionKit", "__typename"})


def _runs_locally(operation: OperationDefinitionNode, access: TenantAccess) -> bool:
    """Whether executing ``operation`` reads only memory and the tenant's embedded entity store
    (so it computes rather than waits, see ``AssetRepository.run_graphql_request``)."""
    if operation.operation is not OperationType.QUERY:
        return False
    if not all(
        isinstance(selection, FieldNode) and selection.name.value in _LOCAL_ROOT_FIELDS
        for selection in operation.selection_set.selections
    ):
        return False
    from workbench.storage.sqlite import SqliteEntityStore

    return isinstance(access.tenant.entity_store, SqliteEntityStore)


def _request_params(raw: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    if not isinstance(raw, Mapping):
        raise ValidationError(
            'a GraphQL request is a JSON object: {"query": "...", "variables": {...}}'
        )
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("the request has no 'query' string; send the GraphQL document")
    variables = raw.get("variables")
    if isinstance(variables, str) and variables.strip():
        try:
            variables = json.loads(variables)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"'variables' is not valid JSON: {exc.msg}") from None
    if variables in ("", None):
        variables = None
    elif not isinstance(variables, Mapping):
        raise ValidationError("'variables' must be a JSON object mapping names to values")
    operation = raw.get("operationName") or None
    if operation is not None and not isinstance(operation, str):
        raise ValidationError("'operationName' must be a string")
    return query, dict(variables) if variables else None, operation


def _run(
    connection: HTTPConnection,
    access: TenantAccess,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    *,
    allow_mutation: bool,
    inline: bool = False,
) -> tuple[ExecutionResult, bool]:
    """Pick the schema, check the operation, execute; the result and whether the request may
    run on the event loop thread next time. Runs in a worker thread, or with ``inline`` on the
    event loop (then it raises :class:`RunInPool` before doing anything that may wait:
    a schema build, a mutation)."""
    service = service_state(connection)
    schema: TenantSchema | None
    if inline:
        schema = service.schemas.current(access.tenant)
        if schema is None:
            raise RunInPool
    else:
        schema = service.schema_for(access.tenant)
    document = schema.document(query)
    local = False
    mutation = None
    if not isinstance(document, list):
        operation = get_operation_ast(document, operation_name)
        if operation is not None and operation.operation is OperationType.MUTATION:
            mutation = operation
        if operation is not None and operation.operation is OperationType.MUTATION:
            if not allow_mutation:
                raise _MutationOverGetError
            if inline:
                raise RunInPool
            access.principal.check_scope(WRITE_SCOPE)
            for scope in _operation_scopes(operation):
                access.principal.check_scope(scope)
        local = operation is not None and _runs_locally(operation, access)
    context = service.schemas.context(
        access.tenant, principal=access.principal.subject, request_id=current_request_id()
    )
    result = schema.execute_sync(query, variables, context=context, operation_name=operation_name)
    if mutation is not None and not result.errors:
        note_graphql_mutation(connection.scope, _root_fields(mutation))
    return result, local


def _root_fields(operation: OperationDefinitionNode) -> list[str]:
    """``runtime.demoEnergyEnergyMeters.create``-style paths of a mutation's fields (two levels:
    the namespace and what was done in it), for the audit trail and the scope checks."""
    paths: list[str] = []
    for top in operation.selection_set.selections:
        if not isinstance(top, FieldNode):
            continue
        inner = top.selection_set.selections if top.selection_set else ()
        names = [f.name.value for f in inner if isinstance(f, FieldNode)]
        paths.extend([f"{top.name.value}.{n}" for n in names] or [top.name.value])
    return paths


def _operation_scopes(operation: OperationDefinitionNode) -> set[str]:
    """Operation scopes a mutation needs beyond ``assets:write``: CK imports need
    ``assets:ck-import`` (DataModelManagement), stream writes ``assets:streams-write``
    (StreamDataWriter)."""
    needed = set()
    for path in _root_fields(operation):
        if path.startswith("constructionKit"):
            needed.add(CK_IMPORT_SCOPE)
        elif path.startswith("streamData"):
            needed.add(STREAM_WRITE_SCOPE)
    return needed


class _MutationOverGetError(Exception):
    """A mutation arrived with GET (GraphQL over HTTP allows only queries there)."""


async def _handle(request: Request, tenant_id: str, raw: Any, *, allow_mutation: bool) -> Response:
    service = service_state(request)
    try:
        access = resolve_tenant(service.workbench, service.authenticator, request, tenant_id)
        access.principal.check_scope(READ_SCOPE)
        query, variables, operation = _request_params(raw)
        result = await service.run_graphql_request(
            (tenant_id, query, operation, allow_mutation),
            _run,
            request,
            access,
            query,
            variables,
            operation,
            allow_mutation=allow_mutation,
        )
    except WorkbenchError as error:
        return _error_response(error)
    except _MutationOverGetError:
        return JSONResponse(
            {
                "errors": [
                    {
                        "message": "mutations cannot be sent with GET; use POST",
                        "extensions": {"code": "VALIDATION_FAILED"},
                    }
                ]
            },
            405,
            headers={"Allow": "POST"},
        )
    return _JsonBody(_result_body(result))


@router.post(
    GRAPHQL_PATH,
    summary="Execute a GraphQL query or mutation",
    description="Body: `{query, variables, operationName}` as JSON, or the document as "
    "`application/graphql`. The schema is generated from the tenant's CK model.",
    response_class=JSONResponse,
)
async def graphql_post(request: Request, tenantId: str) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/graphql":
        raw: Any = {"query": body.decode("utf-8", "replace")}
    else:
        try:
            raw = _loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            error = ValidationError(f"the request body is not valid JSON: {exc}")
            return _error_response(error)
    return await _handle(request, tenantId, raw, allow_mutation=True)


@router.get(
    GRAPHQL_PATH,
    summary="Execute a GraphQL query (GET)",
    description="`?query=...&variables=...&operationName=...`; mutations need POST. A browser "
    "opening this URL without a query is sent to the playground.",
    response_class=JSONResponse,
)
async def graphql_get(request: Request, tenantId: str) -> Response:
    params = dict(request.query_params)
    if "query" not in params and "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(str(request.url_for("playground", tenantId=tenantId)), 307)
    return await _handle(request, tenantId, params, allow_mutation=False)


# ---- WebSocket (graphql-transport-ws) --------------------------------------------------------


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket(GRAPHQL_PATH)
async def graphql_ws(websocket: WebSocket, tenantId: str) -> None:
    """Subscriptions (and queries) over the ``graphql-transport-ws`` protocol."""
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(4406, "Subprotocol not acceptable: use graphql-transport-ws")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    session = _Session(websocket, tenantId)
    try:
        await session.run()
    except _Close as close:
        if websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(close.code, close.reason[:120])
    except WebSocketDisconnect:
        pass
    finally:
        await session.stop()


class _Session:
    """One graphql-transport-ws connection: init/ack, then subscribe/next/complete."""

    def __init__(self, websocket: WebSocket, tenant_id: str) -> None:
        self.websocket = websocket
        self.tenant_id = tenant_id
        self.access: TenantAccess | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()

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

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(self.receive(), CONNECTION_INIT_TIMEOUT_S)
        except TimeoutError:
            raise _Close(4408, "Connection initialisation timeout") from None
        if first["type"] != "connection_init":
            raise _Close(4400, "Invalid message received: expected connection_init")
        self.access = self._authenticate(first.get("payload"))
        await self.send({"type": "connection_ack"})
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "ping":
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

    def _authenticate(self, payload: Any) -> TenantAccess:
        service = service_state(self.websocket)
        connection: HTTPConnection = self.websocket
        if isinstance(payload, Mapping):
            header = payload.get("Authorization") or payload.get("authorization")
            if isinstance(header, str) and header:
                headers = [
                    (k, v) for k, v in self.websocket.scope["headers"] if k != b"authorization"
                ]
                headers.append((b"authorization", header.encode("latin-1")))
                connection = HTTPConnection({**self.websocket.scope, "headers": headers})
        try:
            access = resolve_tenant(
                service.workbench, service.authenticator, connection, self.tenant_id
            )
            access.principal.check_scope(READ_SCOPE)
        except Unauthenticated as error:
            raise _Close(4401, f"Unauthorized: {error.message}") from None
        except Forbidden as error:
            raise _Close(4403, f"Forbidden: {error.message}") from None
        except WorkbenchError as error:
            raise _Close(4404 if error.code == "NOT_FOUND" else 4400, error.message) from None
        return access

    def _subscribe(self, message: dict[str, Any]) -> None:
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            raise _Close(4400, "Invalid message received: subscribe needs an id")
        if operation_id in self.operations:
            raise _Close(4409, f"Subscriber for {operation_id} already exists")
        task = asyncio.create_task(self._operation(operation_id, message.get("payload")))
        self.operations[operation_id] = task

    async def _operation(self, operation_id: str, payload: Any) -> None:
        assert self.access is not None
        service = service_state(self.websocket)
        try:
            query, variables, operation_name = _request_params(payload)
            schema: TenantSchema = await service.run_graphql(service.schema_for, self.access.tenant)
            document = schema.document(query)
            kind = None
            if not isinstance(document, list):
                ast = get_operation_ast(document, operation_name)
                kind = ast.operation if ast is not None else None
            context = service.schemas.context(
                self.access.tenant, principal=self.access.principal.subject
            )
            if kind is OperationType.SUBSCRIPTION:
                outcome = await schema.subscribe(
                    query, variables, context=context, operation_name=operation_name
                )
                if isinstance(outcome, ExecutionResult):
                    await self._send_errors(operation_id, outcome.errors)
                    return
                await self._stream(operation_id, outcome)
            else:
                if kind is OperationType.MUTATION:
                    self.access.principal.check_scope(WRITE_SCOPE)
                result = await schema.execute(
                    query, variables, context=context, operation_name=operation_name
                )
                if result.data is None and result.errors:
                    await self._send_errors(operation_id, result.errors)
                    return
                await self.send(
                    {"id": operation_id, "type": "next", "payload": _result_body(result)}
                )
            await self.send({"id": operation_id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except WorkbenchError as error:
            await self._send_errors(
                operation_id,
                [GraphQLError(error.message, extensions={"code": error.code})],
            )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.operations.pop(operation_id, None)

    async def _stream(self, operation_id: str, results: AsyncIterator[ExecutionResult]) -> None:
        try:
            async for result in results:
                await self.send(
                    {"id": operation_id, "type": "next", "payload": _result_body(result)}
                )
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
        self.operations.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
