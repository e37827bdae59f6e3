"""The Communication Controller service (port 5015): adapters register over a WebSocket, get
their configuration and pipelines, report heartbeats and executions; REST routes list adapters,
validate, deploy and execute pipelines (see :mod:`.hub` for the
protocol). Authorized like the other services: the token's tenant and scopes are checked with
:mod:`workbench.services.access`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Query, Request, WebSocket
from prometheus_client import Counter, Gauge, Histogram

from workbench.client.local import Workbench, open_workbench
from workbench.communication import default_registry
from workbench.errors import Conflict, WorkbenchError
from workbench.messaging.base import MessageBus
from workbench.messaging.tenants import service_bus
from workbench.services.access import EntityWriteAccess, ReadAccess, requires
from workbench.services.app import run_service, service_app
from workbench.services.auth import Authenticator, authenticator_from_settings
from workbench.services.authorization import READ_SCOPE
from workbench.services.communication_controller import dataflows
from workbench.services.communication_controller.config import (
    ADAPTER_TYPE,
    adapter_configuration,
    require_adapter,
)
from workbench.services.communication_controller.hub import AdapterHub
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings

__all__ = ["DEFAULT_PORT", "SERVICE_NAME", "CommunicationController", "create_app", "serve"]

log = logging.getLogger("workbench.services.communication_controller.app")

SERVICE_NAME = "communication-controller"
DEFAULT_PORT = 5015


class ControllerMetrics(ServiceMetrics):
    """Request metrics plus adapters online, pipeline runs, failures and run latency."""

    def __init__(self) -> None:
        super().__init__(SERVICE_NAME)
        self.adapters_online = Gauge(
            "workbench_adapters_online", "Adapters connected now.", registry=self.registry
        )
        self.runs = Counter(
            "workbench_pipeline_runs",
            "Pipeline executions by status.",
            ["status"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "workbench_pipeline_run_duration_seconds",
            "Pipeline execution time.",
            registry=self.registry,
        )

    def pipeline_run(self, status: Any, duration_ms: Any) -> None:
        self.runs.labels(str(status or "Unknown")).inc()
        if duration_ms is not None:
            self.run_seconds.observe(float(duration_ms) / 1000)


@dataclass
class CommunicationController:
    """What the routes share: the data directory, the authenticator, the bus, the hub."""

    workbench: Workbench
    authenticator: Authenticator
    bus: MessageBus
    metrics: ControllerMetrics
    hub: AdapterHub = field(init=False)
    heartbeat_seconds: float = 5.0
    offline_after_seconds: float = 15.0
    owns_workbench: bool = False

    def __post_init__(self) -> None:
        self.hub = AdapterHub(
            self.bus,
            heartbeat_seconds=self.heartbeat_seconds,
            offline_after_seconds=self.offline_after_seconds,
            metrics=self.metrics,
        )


router = APIRouter(tags=["communication"])


def _controller(connection: Any) -> CommunicationController:
    return connection.app.state.service  # type: ignore[no-any-return]


@router.websocket("/tenants/{tenantId}/adapters/hub")
async def adapter_hub(websocket: WebSocket, tenantId: str) -> None:
    """An adapter's session (see the protocol in .hub)."""
    controller = _controller(websocket)
    try:
        access = requires(READ_SCOPE).check(websocket, tenantId)
    except WorkbenchError as exc:
        log.warning("adapter refused", extra={"tenant": tenantId, "error": str(exc)})
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    await websocket.accept()
    await controller.hub.serve(websocket, access.tenant)


def _adapter_view(controller: CommunicationController, tenant: Any, entity: Any) -> dict[str, Any]:
    view: dict[str, Any] = entity.to_dict()
    view["connected"] = (tenant.id, entity.rt_id) in controller.hub.sessions
    return view


@router.get("/tenants/{tenantId}/adapters")
async def list_adapters(access: ReadAccess, request: Request) -> list[dict[str, Any]]:
    """Every adapter of the tenant with its states and whether it is connected now."""
    tenant = access.tenant
    page = await asyncio.to_thread(tenant.entities.find, ADAPTER_TYPE, first=10_000)
    return [_adapter_view(_controller(request), tenant, e) for e in page.items]


@router.get("/tenants/{tenantId}/adapters/{rtId}")
async def show_adapter(access: ReadAccess, request: Request, rtId: str) -> dict[str, Any]:
    """One adapter, its states and the configuration the controller pushes to it."""
    tenant = access.tenant
    entity = await asyncio.to_thread(require_adapter, tenant, rtId)
    view = _adapter_view(_controller(request), tenant, entity)
    view["configuration"] = await asyncio.to_thread(adapter_configuration, tenant, rtId)
    return view


@router.post("/tenants/{tenantId}/adapters/{rtId}/deploy")
async def deploy_adapter(access: EntityWriteAccess, request: Request, rtId: str) -> dict[str, Any]:
    """Push the adapter's configuration now (it must be connected)."""
    hub = _controller(request).hub
    session = hub.sessions.get((access.tenant.id, rtId))
    if session is None:
        raise Conflict(
            f"adapter {rtId} is not connected; start it: workbench adapter run --tenant "
            f"{access.tenant.id} --adapter {rtId}"
        )
    await hub.push(session, force=True)
    return {"adapterRtId": rtId, "version": session.version, "pipelines": session.pipelines}


@router.get("/tenants/{tenantId}/nodes")
async def list_nodes(access: ReadAccess) -> dict[str, Any]:
    """The JSON Schema of every node this platform's adapters support."""
    return default_registry().schemas()


@router.post("/tenants/{tenantId}/pipelines/validate")
async def validate(
    access: ReadAccess, definition: Annotated[str, Body(embed=True)]
) -> dict[str, Any]:
    """Check a PipelineDefinition (YAML); every problem with its line, node and property.
    Nodes: the built-in ones and the custom nodes of the tenant's promoted adapters."""
    from workbench.promotion.custom_nodes import validate_definition

    problems = await asyncio.to_thread(
        validate_definition, access.tenant, definition, name="definition"
    )
    return {
        "valid": not problems,
        "problems": [
            {"message": p.message, "location": p.location, "element": p.element} for p in problems
        ],
    }


@router.post("/tenants/{tenantId}/pipelines/{rtId}/execute")
async def execute(
    access: EntityWriteAccess,
    request: Request,
    rtId: str,
    input: Annotated[Any, Body(embed=True)] = None,
    wait: Annotated[float | None, Query(ge=0, le=300)] = None,
) -> dict[str, Any]:
    """Run pipeline ``rtId`` on its adapter (``?wait=SECONDS`` returns the result)."""
    return await _controller(request).hub.execute(access.tenant, rtId, input, wait=wait or None)


@router.get("/tenants/{tenantId}/pipelines/{rtId}/executions")
async def executions(
    access: ReadAccess, rtId: str, first: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[dict[str, Any]]:
    """The latest executions of pipeline ``rtId``, newest first."""
    page = await asyncio.to_thread(
        access.tenant.entities.find,
        "System.Communication/PipelineExecution",
        where=[
            {
                "attributePath": "executedPipeline->rtId",
                "operator": "EQUALS",
                "comparisonValue": rtId,
            }
        ],
        sort=["-startedAt"],
        first=first,
    )
    return [e.to_dict() for e in page.items]


def create_app(
    settings: Settings | None = None,
    *,
    workbench: Workbench | None = None,
    auth: Authenticator | None = None,
    no_auth: bool = False,
    bus: MessageBus | None = None,
    heartbeat_seconds: float = 5.0,
    offline_after_seconds: float = 15.0,
) -> FastAPI:
    """The Communication Controller application (defaults from ``settings``)."""
    settings = settings or Settings()
    authenticator = auth or authenticator_from_settings(settings, no_auth=no_auth)
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    chosen_bus = bus or service_bus(settings)
    opened.publish_events_to(chosen_bus)
    controller = CommunicationController(
        workbench=opened,
        authenticator=authenticator,
        bus=chosen_bus,
        metrics=ControllerMetrics(),
        heartbeat_seconds=heartbeat_seconds,
        offline_after_seconds=offline_after_seconds,
        owns_workbench=owns,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        authenticator.on_start()
        controller.hub.start()
        log.info("communication controller ready", extra={"dataDir": str(opened.home)})
        try:
            yield
        finally:
            await controller.hub.stop()
            controller.bus.close()
            if owns:
                opened.close()

    return service_app(
        title="Mesh Workbench Communication Controller",
        description="Adapter registry, configuration, heartbeats and pipeline executions. "
        "Adapters connect to `/tenants/{tenantId}/adapters/hub` with a bearer token.",
        service=controller,
        metrics=controller.metrics,
        lifespan=lifespan,
        routers=[router, dataflows.router],
    )


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    data_dir: Path | None = None,
    no_auth: bool = False,
    settings: Settings | None = None,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    heartbeat_seconds: float = 5.0,
    offline_after_seconds: float = 15.0,
) -> None:
    """Run the Communication Controller under uvicorn until interrupted."""
    settings = settings or Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"home": data_dir})
    bus = service_bus(settings, embedded_default=True)
    app = create_app(
        settings,
        no_auth=no_auth,
        bus=bus,
        heartbeat_seconds=heartbeat_seconds,
        offline_after_seconds=offline_after_seconds,
    )
    run_service(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
