"""The Asset Repository service: per-tenant GraphQL, REST bulk endpoints, health and metrics.

``create_app(...)`` builds the FastAPI application; ``serve(...)`` runs it under uvicorn (what
``workbench serve asset-repository`` does). The service opens the data directory in its own
process and is the owner of every tenant's embedded stream store it touches (DuckDB allows one
writer process); remote clients reach the data through this API.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from workbench.client.local import Workbench, open_workbench
from workbench.graphql import SchemaCache
from workbench.identity.audit import AuditLog
from workbench.limits import Limits
from workbench.messaging.base import MessageBus
from workbench.messaging.tenants import service_bus
from workbench.services.app import run_service, service_app
from workbench.services.asset_repository.graphql_pool import GraphQLPool
from workbench.services.asset_repository.workers import ForwardToPrimary, PrimaryForwarder
from workbench.services.audit import AuditMiddleware
from workbench.services.auth import Authenticator, NoAuthAuthenticator, authenticator_from_settings
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings

if TYPE_CHECKING:
    from workbench.client.local import Tenant
    from workbench.graphql import TenantSchema

__all__ = ["SERVICE_NAME", "AssetRepository", "create_app", "serve"]

log = logging.getLogger("workbench.services.asset_repository.app")

SERVICE_NAME = "asset-repository"

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


@dataclass
class AssetRepository:
    """What the routes share: the data directory, the authenticator, the bus, the schemas, the
    audit log and the GraphQL execution pool."""

    workbench: Workbench
    authenticator: Authenticator
    bus: MessageBus
    metrics: ServiceMetrics
    owns_workbench: bool = False
    audit_log: AuditLog | None = None
    schemas: SchemaCache = field(init=False)
    #: where GraphQL requests execute (threads, or inline on the event loop)
    pool: GraphQLPool = field(default_factory=GraphQLPool)
    #: in a worker other than the primary (``--workers``): what sends requests on to it
    forwarder: PrimaryForwarder | None = None
    _builds_seen: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.schemas = SchemaCache(bus=self.bus)

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
        self.pool.close()
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
    primary: tuple[Path, int] | None = None,
    worker_index: int | None = None,
    ingest_stream_points: bool = True,
) -> FastAPI:
    """The Asset Repository application.

    ``workbench``: an opened data directory (default: open ``settings.home``, closed on
    shutdown). ``auth``: the authenticator (default: from settings — the static token — or
    :class:`NoAuthAuthenticator` when ``no_auth`` is true). ``bus``: the message bus feeding
    subscriptions (default: ``WORKBENCH_BUS_URL``'s, else an in-process bus).
    ``tune_collector``: apply :func:`tune_gc` on start-up (what :func:`serve` does: the process
    is the service's own). ``primary``: in a worker other than the primary of several
    (``--workers``), the primary's Unix socket and this worker's index; ``worker_index``: the
    primary's, 0 (see :mod:`.workers`). ``ingest_stream_points``: write the
    points adapters publish on each tenant's ``stream-points`` topic
    (:mod:`.stream_ingest`; not in the workers other than the primary).
    """
    # the modules themselves, not the package (whose __init__ imports this module)
    from workbench.services.asset_repository.graphql_routes import GraphQLShortcut
    from workbench.services.asset_repository.graphql_routes import router as graphql_router
    from workbench.services.asset_repository.graphql_ws import router as graphql_ws_router
    from workbench.services.asset_repository.playground import router as playground_router
    from workbench.services.asset_repository.playground import static_files
    from workbench.services.asset_repository.rest import router as rest_router
    from workbench.services.asset_repository.sql_rest import router as sql_router
    from workbench.services.asset_repository.tenants_rest import router as tenants_router

    settings = settings or Settings()
    authenticator = auth or authenticator_from_settings(settings, no_auth=no_auth)
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    audit_log = AuditLog.for_workbench(opened)
    service = AssetRepository(
        workbench=opened,
        authenticator=authenticator,
        bus=bus or service_bus(settings),
        metrics=ServiceMetrics(SERVICE_NAME),
        owns_workbench=owns,
        audit_log=audit_log,
        forwarder=PrimaryForwarder(primary[0]) if primary is not None else None,
    )
    inner: list[tuple[Any, dict[str, Any]]] = [
        # the innermost: GraphQL POSTs skip FastAPI's routing (see GraphQLShortcut)
        (GraphQLShortcut, {}),
        (AuditMiddleware, {"audit_log": audit_log}),
    ]
    if primary is not None or worker_index is not None:
        index = primary[1] if primary is not None else worker_index
        inner.append((ForwardToPrimary, {"forwarder": service.forwarder, "index": index}))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        authenticator.on_start()
        if tune_collector:
            tune_gc()
        ingest = None
        if ingest_stream_points and primary is None:  # the process owning the stream stores
            from workbench.services.asset_repository.stream_ingest import StreamIngest

            ingest = StreamIngest(opened, service.bus)
            ingest.start()
        log.info("asset repository ready", extra={"dataDir": str(opened.home)})
        try:
            yield
        finally:
            if ingest is not None:
                await ingest.stop()
            if service.forwarder is not None:
                await service.forwarder.close()
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
        inner_middleware=inner,
        limits=Limits.from_settings(settings),
        routers=[
            sql_router,  # before rest's POST /streams/{ckTypeId}, which would take "sql"
            playground_router,
            graphql_router,
            graphql_ws_router,
            rest_router,
            tenants_router,
        ],
    )
    app.mount("/static", static_files(), name="static")
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
    """Run the Asset Repository under uvicorn until interrupted (one process; several:
    :func:`workbench.services.asset_repository.worker_processes.run_workers`)."""
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
