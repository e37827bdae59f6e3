"""The skeleton every service is built on: one FastAPI app shape, one way to run it.

A service module defines its state object (kept as ``app.state.service``; it must have an
``authenticator`` and may have a ``workbench`` for the readiness check of :mod:`health`), its
routers and its lifespan, and calls :func:`service_app` for the rest:

- the JSON error shape of :mod:`workbench.services.errors` (no stack traces),
- request ids, structured request logs and Prometheus request metrics
  (:class:`~workbench.services.middleware.RequestMiddleware`),
- ``/healthz`` and ``/readyz`` (:mod:`workbench.services.health`) and ``/metrics``.

:func:`run_service` runs such an app under uvicorn on 127.0.0.1 unless told otherwise, with the
workbench log configuration (request ids and tenants on every line) and optional TLS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from workbench import __version__
from workbench.limits import Limits
from workbench.services.context import RequestContextFilter
from workbench.services.errors import install_error_handlers
from workbench.services.health import router as health_router
from workbench.services.limits import LimitsMiddleware
from workbench.services.metrics import ServiceMetrics
from workbench.services.middleware import RequestMiddleware

__all__ = ["install_log_context", "run_service", "service_app", "uvicorn_options"]


def service_app(
    *,
    title: str,
    description: str,
    service: Any,
    metrics: ServiceMetrics,
    routers: Iterable[APIRouter] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    inner_middleware: Iterable[tuple[Any, dict[str, Any]]] = (),
    limits: Limits | None = None,
) -> FastAPI:
    """A service's FastAPI app with errors, request middleware, health and metrics installed.

    ``inner_middleware``: ``(class, options)`` pairs added inside the request middleware (so the
    request id is known to them), e.g. the audit middleware. ``limits``: the request limits
    (:class:`~workbench.limits.Limits`, default: from the environment's settings), enforced by
    :class:`~workbench.services.limits.LimitsMiddleware` just inside the request middleware.
    """
    app = FastAPI(
        title=title,
        version=__version__,
        description=description,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    for middleware, options in inner_middleware:
        app.add_middleware(middleware, **options)
    app.add_middleware(LimitsMiddleware, limits=limits or Limits.from_settings())
    app.add_middleware(RequestMiddleware, metrics=metrics)
    app.include_router(health_router)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    return app


def run_service(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run ``app`` under uvicorn until interrupted (TLS when a certificate and key are given)."""
    import uvicorn

    install_log_context()
    uvicorn.run(
        app,
        host=host,
        port=port,
        **uvicorn_options(log_level=log_level, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile),
    )


def uvicorn_options(
    *,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> dict[str, Any]:
    """The uvicorn settings every service runs with (besides where it listens)."""
    return {
        "log_level": log_level,
        "access_log": False,  # RequestMiddleware logs each request with its id
        "log_config": None,  # keep the workbench log configuration
        "ws": "websockets-sansio",
        "proxy_headers": False,
        "ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
        "ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None,
    }


def install_log_context() -> None:
    """Add request ids and tenants to every workbench log line (JSON or text)."""
    root = logging.getLogger("workbench")
    handlers: list[Any] = list(root.handlers) or [logging.lastResort]
    for handler in handlers:
        if handler is not None and not any(
            isinstance(f, RequestContextFilter) for f in handler.filters
        ):
            handler.addFilter(RequestContextFilter())
