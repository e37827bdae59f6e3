"""GraphQL over HTTP at ``/tenants/{id}/graphql`` (GET and POST).

The transport is deliberately thin: it reads the request, checks the route's requirement
(:data:`~.graphql_execution.GRAPHQL_ACCESS`) and hands the request to the one
authorization-and-execution path (:mod:`.graphql_execution`) that the WebSocket
transport (:mod:`.graphql_ws`) uses too.

Responses follow the GraphQL-over-HTTP spec: a request that fails before execution (parse,
validation) has no ``data``; a client accepting ``application/graphql-response+json`` gets that
media type, and then such failures answer 400. Errors the transport itself raises (no or bad
token, unknown tenant, unreadable body) answer with the matching HTTP status and a body that is
both a GraphQL response (``errors`` with ``extensions.code``) and the services' error shape
(``code``, ``message``, ``details``).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import orjson
from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from workbench.errors import ValidationError, WorkbenchError
from workbench.graphql.persisted import NO_CACHE, PersistedQueryError, resolve_persisted
from workbench.services.access import service_state
from workbench.services.asset_repository.graphql_execution import (
    GRAPHQL_ACCESS,
    GraphQLRequest,
    MutationOverGetError,
    Outcome,
    execute,
    response_body,
)
from workbench.services.asset_repository.graphql_stream import json_response
from workbench.services.asset_repository.workers import PrimaryForwarder, needs_primary
from workbench.services.context import current_request_id
from workbench.services.errors import status_for

__all__ = ["GRAPHQL_PATH", "GRAPHQL_RESPONSE_MEDIA_TYPE", "GraphQLShortcut", "router"]

log = logging.getLogger("workbench.services.graphql")

GRAPHQL_PATH = "/tenants/{tenantId}/graphql"
#: the GraphQL-over-HTTP spec's media type (a client asks for it with ``Accept``)
GRAPHQL_RESPONSE_MEDIA_TYPE = "application/graphql-response+json"

router = APIRouter(tags=["graphql"])


def _accepts_graphql_response(request: Request) -> bool:
    """Whether the client prefers ``application/graphql-response+json`` to ``application/json``
    (by the ``Accept`` header's q-values; ties go to the spec's media type)."""
    quality: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    wanted = quality.get(GRAPHQL_RESPONSE_MEDIA_TYPE, 0.0)
    return wanted > 0 and wanted >= quality.get("application/json", 0.0)


def _error_response(error: WorkbenchError, media_type: str = "application/json") -> JSONResponse:
    status = status_for(error)
    body = {
        "errors": [{"message": error.message, "extensions": {"code": error.code}}],
        "code": error.code,
        "message": error.message,
        "details": [{"message": d.message, "location": d.location} for d in error.details],
        "requestId": current_request_id(),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status, headers=headers, media_type=media_type)


def _loads(body: bytes) -> Any:
    """A JSON request body; the standard library's reading (and errors) for anything orjson
    rejects (NaN, huge integers, UTF-16, ...)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


async def _handle(
    request: Request, tenant_id: str, raw: Any, *, allow_mutation: bool, raw_body: bytes = b""
) -> Response:
    service = service_state(request)
    spec_media = _accepts_graphql_response(request)
    media_type = GRAPHQL_RESPONSE_MEDIA_TYPE if spec_media else "application/json"
    try:
        access = GRAPHQL_ACCESS.check(request, tenant_id)
        raw = resolve_persisted(access.tenant, raw)  # APQ and the allow-list (graphql.persisted)
        graphql_request = GraphQLRequest.from_params(raw, allow_mutation=allow_mutation)
        forwarder: PrimaryForwarder | None = service.forwarder
        if forwarder is not None and needs_primary(
            graphql_request.query, graphql_request.operation_name
        ):  # a worker of several: writes and stream data run in the primary (workers.py)
            return await forwarder.forward(request, raw_body)
        outcome: Outcome = await service.pool.run_request(
            (tenant_id, *graphql_request.shape), execute, request, access, graphql_request
        )
    except PersistedQueryError as error:  # a GraphQL response, as APQ clients expect it
        body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
        return JSONResponse(body, error.status, headers=NO_CACHE, media_type=media_type)
    except WorkbenchError as error:
        return _error_response(error, media_type)
    except MutationOverGetError:
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
            media_type=media_type,
        )
    status = 400 if spec_media and outcome.request_error else 200
    # streamed when large (graphql_stream): the body is sent as it is encoded
    return json_response(response_body(outcome), status, media_type)


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
            spec = _accepts_graphql_response(request)
            return _error_response(
                error, GRAPHQL_RESPONSE_MEDIA_TYPE if spec else "application/json"
            )
    return await _handle(request, tenantId, raw, allow_mutation=True, raw_body=body)


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


_POST_PATH = re.compile(r"^/tenants/([^/]+)/graphql$")


class GraphQLShortcut:
    """ASGI middleware (the innermost) that hands ``POST /tenants/{id}/graphql`` to
    :func:`graphql_post` without FastAPI's routing and endpoint machinery, which cost about a
    sixth of a small query's CPU; everything else goes on to the app.

    The request is the route's: the same handler and the same authorization path
    (:data:`~.graphql_execution.GRAPHQL_ACCESS`), and ``scope["route"]`` is the route's, so
    metrics and logs name it as before. The middleware outside it (request ids, limits, audit,
    forwarding to the primary) runs as for any request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    def _post_route(self) -> Any:
        if self._route is None:
            self._route = next(
                route
                for route in router.routes
                if getattr(route, "path", None) == GRAPHQL_PATH
                and "POST" in getattr(route, "methods", ())
            )
        return self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _POST_PATH.match(get_route_path(scope))
            if match is not None:
                route = self._post_route()
                matched, child = route.matches(scope)  # the route's own parameters
                if matched is Match.FULL:
                    scope.update(child)
                    request = Request(scope, receive)
                    try:
                        response = await graphql_post(request, scope["path_params"]["tenantId"])
                    except Exception as exc:  # what the app's handlers answer (413 body, ...)
                        handler = _exception_handler(scope, exc)
                        if handler is None:
                            raise
                        response = await handler(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _exception_handler(scope: Scope, exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (by its classes, nearest first), as the
    exception middleware the shortcut passes by would pick it; None: none."""
    handlers = getattr(scope.get("app"), "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
