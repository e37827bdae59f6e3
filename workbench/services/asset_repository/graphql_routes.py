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
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

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
from workbench.services.asset_repository.workers import PrimaryForwarder, needs_primary
from workbench.services.context import current_request_id
from workbench.services.errors import status_for

__all__ = ["GRAPHQL_PATH", "GRAPHQL_RESPONSE_MEDIA_TYPE", "router"]

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
    response = _JsonBody(response_body(outcome), status)
    response.headers["content-type"] = media_type
    return response


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
