"""The Asset Repository service: per-tenant GraphQL, REST bulk endpoints, health and metrics.

``create_app(...)`` builds the FastAPI application; ``serve(...)`` runs it under uvicorn (what
``workbench serve asset-repository`` does). The service opens the data directory in its own
process and is the owner of every tenant's embedded stream store it touches (DuckDB allows one
writer process); remote clients reach the data through this API.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI

from workbench.client.local import Workbench, open_workbench
from workbench.graphql import SchemaCache
from workbench.identity.audit import AuditLog
from workbench.messaging.base import MessageBus
from workbench.messaging.tenants import service_bus
from workbench.services.app import run_service, service_app
from workbench.services.audit import AuditMiddleware
from workbench.services.auth import Authenticator, NoAuthAuthenticator, authenticator_from_settings
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings

if TYPE_CHECKING:
    from workbench.client.local import Tenant
    from workbench.graphql import TenantSchema

__all__ = ["SERVICE_NAME", "AssetRepository", "create_app", "serve"]

log = logging.getLogger("workbench.services.asset_repository")

SERVICE_NAME = "asset-repository"

T = TypeVar("T")

#: a GraphQL request that last took less CPU than this (and may run inline, see
#: :meth:`AssetRepository.run_graphql_request`) runs on the event loop thread
INLINE_MAX_CPU_S = 0.010
#: request shapes remembered for that decision
INLINE_MEMORY = 2048


#: the collector's generation thresholds in the service: a large GraphQL result allocates some
#: 100,000 container objects, and with the default (700, 10, 10) the collector runs every few
#: hundred of them, rescanning the request's live objects (measured: ~20 % of graphql-large)
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> tuple[int, int, int]:
    """The service's garbage-collector settings; returns the previous thresholds.

    Moves what start-up created (modules, the app) out of the collector's view
    (``gc.freeze``: never garbage, no longer rescanned by full collections) and collects
    young objects less often (:data:`GC_THRESHOLDS`). Unreachable cycles are still collected.
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return previous


class RunInPool(Exception):
    """Raised by a request function called with ``inline=True`` that must run in the pool after
    all (a schema to build, a mutation) before it has done anything."""


@dataclass
class AssetRepository:
    """What the routes share: the data directory, the authenticator, the bus, the schemas."""

    workbench: Workbench
    authenticator: Authenticator
    bus: MessageBus
    metrics: ServiceMetrics
    owns_workbench: bool = False
    schemas: SchemaCache = field(init=False)
    #: GraphQL execution threads: few on purpose; execution holds the GIL, and many threads
    #: contending for it (plus the event loop) cost more than they overlap
    graphql_workers: int = 2
    executor: ThreadPoolExecutor = field(init=False)
    #: request shape -> whether it may run on the event loop thread (see run_graphql_request)
    _inline: dict[Hashable, bool] = field(default_factory=dict, init=False)
    _builds_seen: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.schemas = SchemaCache(bus=self.bus)
        self.executor = ThreadPoolExecutor(self.graphql_workers, thread_name_prefix="graphql")

    async def run_graphql(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func`` on a GraphQL execution thread, with this request's context (request id)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def run_graphql_request(
        self, key: Hashable, func: Callable[..., tuple[T, bool]], *args: Any, **kwargs: Any
    ) -> T:
        """``func(*args, inline=..., **kwargs)`` for one GraphQL request of shape ``key``.

        Handing a request to the pool costs a thread hop and, under load, GIL hand-offs between
        the pool threads and the event loop; a request that computes for a few milliseconds
        without blocking on I/O is cheaper run right here. ``func`` returns its result and
        whether the request may run inline at all (a query reading only the embedded stores);
        a shape runs inline when its last run said so and took less than
        :data:`INLINE_MAX_CPU_S` of CPU. Unknown shapes, mutations and anything slow or remote
        stay in the pool (so a slow request cannot stall the event loop twice in a row).
        """
        if self._inline.get(key):
            began = time.thread_time()
            try:
                result, inline_ok = func(*args, inline=True, **kwargs)
            except RunInPool:
                self._inline.pop(key, None)
            else:
                self._remember(key, inline_ok and time.thread_time() - began < INLINE_MAX_CPU_S)
                return result

        def pooled() -> T:
            began = time.thread_time()
            result, inline_ok = func(*args, inline=False, **kwargs)
            self._remember(key, inline_ok and time.thread_time() - began < INLINE_MAX_CPU_S)
            return result

        return await self.run_graphql(pooled)

    def _remember(self, key: Hashable, inline: bool) -> None:
        if inline:
            if len(self._inline) >= INLINE_MEMORY:
                self._inline.clear()
            self._inline[key] = True
        else:
            self._inline.pop(key, None)

    @property
    def needs_token(self) -> bool:
        return not isinstance(self.authenticator, NoAuthAuthenticator)

    def schema_for(self, tenant: Tenant) -> TenantSchema:
        """The tenant's schema for its current model (built or rebuilt as needed)."""
        schema = self.schemas.get(tenant)
        if self.schemas.builds != self._builds_seen:
            with self._lock:
                new = self.schemas.builds - self._builds_seen
                self._builds_seen = self.schemas.builds
            for _ in range(new):
                self.metrics.schema_built()
            log.info("GraphQL schema built", extra={"tenant": tenant.id, "stamp": schema.stamp})
        return schema

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.bus.close()
        if self.owns_workbench:
            self.workbench.close()


def create_app(
    settings: Settings | None = None,
    *,
    workbench: Workbench | None = None,
    auth: Authenticator | None = None,
    no_auth: bool = False,
    bus: MessageBus | None = None,
    tune_collector: bool = False,
) -> FastAPI:
    """The Asset Repository application.

    ``workbench``: an opened data directory (default: open ``settings.home``, closed on
    shutdown). ``auth``: the authenticator (default: from settings — the static token — or
    :class:`NoAuthAuthenticator` when ``no_auth`` is true). ``bus``: the message bus feeding
    subscriptions (default: ``WORKBENCH_BUS_URL``'s, else an in-process bus).
    ``tune_collector``: apply :func:`tune_gc` on start-up (what :func:`serve` does: the process
    is the service's own).
    """
    from workbench.services import graphql_routes, playground, rest, sql_rest, tenants_rest

    settings = settings or Settings()
    authenticator = auth or authenticator_from_settings(settings, no_auth=no_auth)
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    service = AssetRepository(
        workbench=opened,
        authenticator=authenticator,
        bus=bus or service_bus(settings),
        metrics=ServiceMetrics(SERVICE_NAME),
        owns_workbench=owns,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        authenticator.on_start()
        if tune_collector:
            tune_gc()
        log.info("asset repository ready", extra={"dataDir": str(opened.home)})
        try:
            yield
        finally:
            service.close()

    app = service_app(
        title="Mesh Workbench Asset Repository",
        description="Per-tenant GraphQL generated from the Construction Kit model, REST bulk "
        "endpoints for stream data, CK libraries and runtime files. Authenticate with "
        "`Authorization: Bearer <token>`.",
        service=service,
        metrics=service.metrics,
        lifespan=lifespan,
        # inner to the request middleware, so the request id is known when the entry is written
        inner_middleware=[(AuditMiddleware, {"audit_log": AuditLog.for_workbench(opened)})],
        routers=[
            sql_rest.router,  # before rest's POST /streams/{ckTypeId}, which would take "sql"
            playground.router,
            graphql_routes.router,
            rest.router,
            tenants_rest.router,
        ],
    )
    app.mount("/static", playground.static_files(), name="static")
    return app


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 5001,
    data_dir: Path | None = None,
    no_auth: bool = False,
    settings: Settings | None = None,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the Asset Repository under uvicorn until interrupted."""
    settings = settings or Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"home": data_dir})
    # its own process: entity events cross processes (WORKBENCH_BUS_URL or the embedded log)
    bus = service_bus(settings, embedded_default=True)
    app = create_app(settings, no_auth=no_auth, tune_collector=True, bus=bus)
    run_service(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
