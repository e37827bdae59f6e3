"""``workbench serve asset-repository --workers N``: several processes serving one port.

Each worker process binds the port with ``SO_REUSEPORT`` (the kernel spreads new connections
over them) and builds its own app, schema cache and execution pool. Worker 0 is the *primary*:
it also listens on a Unix socket in the data directory (:func:`primary_socket`) and is the one
process that writes and that opens the tenants' embedded stream stores (DuckDB allows one
process per file). The other workers answer GraphQL queries on entities and the CK model
themselves (SQLite in WAL mode serves readers in several processes, and each request checks the
model's stamp, so a change made anywhere is seen at once), health and metrics, and forward
everything else to the primary unchanged: mutations, stream data, SQL, the REST endpoints and
GraphQL operations on streams (:func:`needs_primary`). The primary checks the token again, so a
forwarded request passes the same authorization path as any other. Subscriptions run in the
worker that holds the WebSocket; entity events reach it through the cross-process bus.

This module is what a worker needs to route requests; :mod:`.worker_processes` starts and
supervises the processes.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    import httpx
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "WORKER_HEADER",
    "ForwardToPrimary",
    "PrimaryForwarder",
    "needs_primary",
    "primary_socket",
]

log = logging.getLogger("workbench.services.asset_repository.workers")

#: response header naming the worker that answered (0: the primary), with ``--workers`` > 1
WORKER_HEADER = "x-workbench-worker"
_WORKER_HEADER = WORKER_HEADER.encode()

#: what a worker other than the primary answers itself (GraphQL decides per operation)
_SERVED_BY_ANY = re.compile(
    r"^/(?:healthz|readyz|metrics|static/.*|tenants/[^/]+/graphql(?:/playground)?/?)$"
)
#: top-level query fields that read only entities and the CK model
_ENTITY_ROOTS = frozenset({"runtime", "constructionKit", "__typename"})
#: fields that may read stream data wherever they appear (stored stream queries)
_STREAM_FIELDS = frozenset({"streamData", "runQuery"})
#: request headers not forwarded (the client's connection, not the request)
_HOP_HEADERS = frozenset({b"host", b"connection", b"keep-alive", b"content-length", b"upgrade"})
#: response headers of the primary this worker sets itself
_RESPONSE_DROPPED = frozenset(
    {
        b"content-length",
        b"content-encoding",  # httpx hands over the decoded body
        b"transfer-encoding",
        b"connection",
        b"x-request-id",
        b"date",
        b"server",
    }
)


def primary_socket(home: Path, port: int) -> Path:
    """The Unix socket the primary worker of the service on ``port`` listens on."""
    return Path(home) / "run" / f"asset-repository-{port}.sock"


@lru_cache(maxsize=1024)
def needs_primary(query: str, operation_name: str | None) -> bool:
    """Whether a GraphQL request must run in the primary worker: anything but a query reading
    entities and the model (a mutation, stream data, a stored query, a field an extension
    adds). Documents that do not parse stay where they are (the worker reports the error)."""
    from graphql import (
        FieldNode,
        GraphQLError,
        OperationType,
        get_operation_ast,
        parse,
    )
    from graphql.language import Visitor, visit

    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        return False
    if operation.operation is not OperationType.QUERY:
        return True
    roots = operation.selection_set.selections
    if not all(isinstance(s, FieldNode) and s.name.value in _ENTITY_ROOTS for s in roots):
        return True
    names: set[str] = set()

    class _Names(Visitor):
        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            names.add(node.name.value)

    visit(document, _Names())
    return bool(names & _STREAM_FIELDS)


class PrimaryForwarder:
    """Sends a request on to the primary worker over its Unix socket, as it came."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(self.socket_path)),
                base_url="http://primary",
                timeout=httpx.Timeout(None, connect=10.0),
            )
        return self._client

    async def send(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The primary's status, headers and body for one request."""
        from workbench.services.context import current_request_id

        kept = [(k, v) for k, v in headers if k.lower() not in _HOP_HEADERS]
        request_id = current_request_id()
        if request_id:  # one id in both processes' logs (this worker adds it to the response)
            kept = [(k, v) for k, v in kept if k.lower() != b"x-request-id"]
            kept.append((b"x-request-id", request_id.encode()))
        response = await self._http().request(method, target, headers=kept, content=body)
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROPPED]
        return response.status_code, out, response.content

    async def forward(self, request: Request, body: bytes) -> Response:
        """``request`` (whose body was read: ``body``) answered by the primary."""
        from starlette.responses import Response

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        status, headers, content = await self.send(
            request.method, target, list(request.scope["headers"]), body
        )
        response = Response(content, status)
        response.raw_headers = [*headers, (b"content-length", str(len(content)).encode())]
        return response

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class ForwardToPrimary:
    """ASGI middleware of worker ``index`` of several: every response names the worker
    (:data:`WORKER_HEADER`); in a worker other than the primary (``forwarder`` given), HTTP
    requests it does not serve itself (:data:`_SERVED_BY_ANY`) go to the primary."""

    def __init__(self, app: ASGIApp, forwarder: PrimaryForwarder | None, index: int) -> None:
        self.app = app
        self.forwarder = forwarder
        self.index = str(index).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if (
            scope["type"] == "websocket"
            or self.forwarder is None
            or _SERVED_BY_ANY.match(scope["path"])
        ):

            async def named(message: Message) -> None:
                if message["type"] in ("http.response.start", "websocket.accept"):
                    headers = list(message.get("headers", ()))
                    if all(k != _WORKER_HEADER for k, _ in headers):  # not the primary's answer
                        headers.append((_WORKER_HEADER, self.index))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, named)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        target += f"?{query}" if query else ""
        status, headers, content = await self.forwarder.send(
            scope["method"], target, list(scope["headers"]), b"".join(chunks)
        )
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
