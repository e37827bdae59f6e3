"""The adapter's HTTP endpoint for ``FromHttpRequest@1``: requests to ``/{tenantId}{path}`` run
the pipeline whose trigger declared that method and path; the data context holds ``body``,
``query``, ``path``, ``method`` and ``files``; the answer is the execution's output (500 with the
error when it failed, 404 when no pipeline serves the route)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workbench.communication.node import Fire

__all__ = ["http_trigger_app", "serve_http_triggers"]


def http_trigger_app(tenant_id: str, routes: Mapping[tuple[str, str], Fire]) -> Starlette:
    """An ASGI app serving ``routes`` (``(METHOD, path)`` → fire) under ``/{tenant_id}``."""

    async def dispatch(request: Request) -> JSONResponse:
        prefix = f"/{tenant_id}"
        full = request.url.path
        if not full.startswith(prefix + "/"):
            return JSONResponse({"error": f"this adapter serves tenant {tenant_id!r} only"}, 404)
        path = full[len(prefix) :]
        fire = routes.get((request.method, path))
        if fire is None:
            served = ", ".join(f"{m} {prefix}{p}" for m, p in sorted(routes)) or "none"
            return JSONResponse(
                {"error": f"no pipeline serves {request.method} {full}; served: {served}"}, 404
            )
        context = await _context(request, path)
        result = await fire(context, "Event")
        if result is None or getattr(result, "status", "Failed") != "Completed":
            error = getattr(result, "error", None) or "the pipeline failed"
            return JSONResponse({"status": "Failed", "error": error}, 500)
        return JSONResponse(json.loads(json.dumps(result.output, default=str)))

    return Starlette(
        routes=[Route("/{rest:path}", dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
    )


async def _context(request: Request, path: str) -> dict[str, Any]:
    body: Any = None
    files: list[dict[str, Any]] = []
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        fields: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                files.append(
                    {
                        "name": name,
                        "fileName": value.filename,
                        "contentType": value.content_type,
                        "content": base64.b64encode(content).decode(),
                    }
                )
            else:
                fields[name] = value
        body = fields
    else:
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
    return {
        "body": body,
        "query": dict(request.query_params),
        "path": path,
        "method": request.method,
        "files": files,
    }


async def serve_http_triggers(
    tenant_id: str, routes: Mapping[tuple[str, str], Fire], host: str, port: int
) -> None:
    """Serve the HTTP triggers until cancelled."""
    import uvicorn

    config = uvicorn.Config(
        http_trigger_app(tenant_id, routes),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        server.should_exit = True  # close the listening socket and connections cleanly
        await running
        raise
