"""The Bot Service (port 5009): scheduled notebook bots, their run history, and promotions.

``create_app(...)`` builds the FastAPI app on the shared skeleton (:mod:`workbench.services.app`:
errors, request ids, ``/healthz``, ``/readyz``, ``/metrics``); routes are in
:mod:`workbench.services.bot_service.routes`. Callers authenticate like at the Asset Repository
(the same authenticator, the same tenant and operation checks of :mod:`workbench.services.access`,
mutations recorded in the tenant's audit log). Runs execute in processes of their own under
a token of the bot's own OAuth client (see :mod:`workbench.bots.credentials`), so they go on
whoever logs out, whichever notebook server is culled, and while the hub restarts.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from workbench.bots.credentials import BotCredentials, InProcessCredentials, StaticTokenCredentials
from workbench.bots.executor import Executor
from workbench.bots.executors import executor_from_settings
from workbench.bots.history import history_of
from workbench.bots.kernel_pool import KernelPool
from workbench.bots.runs import BotRunner, Credentials
from workbench.bots.scheduler import BotScheduler
from workbench.bots.settings import BotServiceSettings
from workbench.client.local import Workbench, open_workbench
from workbench.identity.audit import AuditLog
from workbench.messaging.base import MessageBus
from workbench.messaging.tenants import service_bus
from workbench.promotion.service import Promotions
from workbench.services.app import run_service, service_app
from workbench.services.audit import AuditMiddleware
from workbench.services.auth import Authenticator, authenticator_from_settings
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings

__all__ = ["SERVICE_NAME", "BotService", "create_app", "serve"]

log = logging.getLogger("workbench.services.bot_service.app")

SERVICE_NAME = "bot-service"


@dataclass
class BotService:
    """What the routes share."""

    workbench: Workbench
    authenticator: Authenticator
    scheduler: BotScheduler
    promotions: Promotions
    metrics: ServiceMetrics
    public_url: str = ""
    owns_workbench: bool = False

    def close(self) -> None:
        self.scheduler.stop()
        if self.scheduler.bus is not None:  # the entity events' connections (RabbitMQ, the log)
            self.scheduler.bus.close()
        if self.owns_workbench:
            self.workbench.close()


def _resume_adapters(workbench: Workbench) -> None:
    """The adapter promotions' processes back after a reboot (each start and failure is logged
    by the pool); a supervisor still running is kept."""
    from workbench.promotion.adapter_pool import resume_pools

    try:
        results = resume_pools(workbench, by=SERVICE_NAME)
    except Exception:  # the service runs on; `workbench promotions resume` says what is wrong
        log.exception("resuming the adapter promotions' processes failed")
        return
    counts = {a: sum(r["action"] == a for r in results) for a in ("started", "running", "failed")}
    log.info("adapter promotions resumed", extra={"adapters": len(results), **counts})


def default_credentials(
    settings: Settings, bot_settings: BotServiceSettings, home: Path, workbench: Workbench
) -> Credentials:
    """Bot tokens from Identity (the default), the static development token, or kernels that
    open the data directory (``WORKBENCH_BOT_API_URL=in-process``)."""
    api_url = (
        bot_settings.api_url or f"http://{settings.service_host}:{settings.asset_repository_port}"
    )
    if bot_settings.api_url == "in-process":
        return InProcessCredentials(home)
    if settings.dev_static_token and settings.api_token is not None:
        return StaticTokenCredentials(api_url, settings.api_token.get_secret_value())
    token_url = f"{(settings.identity_url or settings.issuer_url()).rstrip('/')}/token"
    return BotCredentials(workbench, api_url=api_url, token_url=token_url)


def create_app(
    settings: Settings | None = None,
    *,
    workbench: Workbench | None = None,
    auth: Authenticator | None = None,
    no_auth: bool = False,
    bot_settings: BotServiceSettings | None = None,
    credentials: Credentials | None = None,
    executor: Executor | None = None,
    public_url: str = "",
    bus: MessageBus | None = None,
    resume_adapters: bool = True,
) -> FastAPI:
    """The Bot Service application; the scheduler starts with the app and stops with it.
    ``bus``: where event-scheduled bots get entity events (default: ``WORKBENCH_BUS_URL``'s,
    else an in-process bus); the app closes it when it stops. ``resume_adapters``: at start, bring
    back the local pool's process of every deployed adapter promotion whose supervisor is gone
    (after a reboot; :func:`workbench.promotion.adapter_pool.resume_pools`), in the background."""
    from workbench.services.bot_service import routes

    settings = settings or Settings()
    bot_settings = bot_settings or BotServiceSettings()
    authenticator = auth or authenticator_from_settings(settings, no_auth=no_auth)
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    credentials = credentials or default_credentials(settings, bot_settings, opened.home, opened)

    def link(record: Any) -> str:
        base = public_url or f"http://{settings.service_host}:{bot_settings.port}"
        return f"{base}/tenants/{record.tenant}/bots/{record.bot}/runs/{record.run_id}/html"

    runner = BotRunner(
        opened.home,
        functools.partial(history_of, opened),
        credentials,
        smtp_url=bot_settings.smtp_url,
        mail_from=bot_settings.mail_from,
        link=link,
        default_memory_mb=bot_settings.memory_mb,
        # pre-started kernels where runs execute here; bot workers keep pools of their own
        pool=KernelPool(opened.home, bot_settings.pool_size)
        if executor is None and bot_settings.executor == "local"
        else None,
    )
    scheduler = BotScheduler(
        opened,
        executor or executor_from_settings(runner, bot_settings, settings.bus_url),
        tenant_concurrency=bot_settings.tenant_concurrency,
        tick_s=bot_settings.tick_s,
        retention=(bot_settings.retention_days * 86400, bot_settings.retention_runs),
        bus=bus or service_bus(settings),
    )
    service = BotService(
        workbench=opened,
        authenticator=authenticator,
        scheduler=scheduler,
        promotions=Promotions(opened),
        metrics=ServiceMetrics(SERVICE_NAME),
        public_url=public_url,
        owns_workbench=owns,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        authenticator.on_start()
        scheduler.start()
        if resume_adapters:
            threading.Thread(
                target=_resume_adapters, args=(opened,), name="resume-adapters", daemon=True
            ).start()
        log.info("bot service ready", extra={"dataDir": str(opened.home)})
        try:
            yield
        finally:
            service.close()

    return service_app(
        title="Mesh Workbench Bot Service",
        description="Scheduled notebook bots of every tenant: schedules, manual runs, run "
        "history (executed notebooks, HTML, logs, outputs), and notebook promotion. "
        "Authenticate with `Authorization: Bearer <token>`.",
        service=service,
        metrics=service.metrics,
        lifespan=lifespan,
        inner_middleware=[(AuditMiddleware, {"audit_log": AuditLog.for_workbench(opened)})],
        routers=[routes.router],
    )


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 5009,
    data_dir: Path | None = None,
    no_auth: bool = False,
    settings: Settings | None = None,
    bot_settings: BotServiceSettings | None = None,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the Bot Service under uvicorn until interrupted."""
    settings = settings or Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"home": data_dir})
    scheme = "https" if ssl_certfile else "http"
    app = create_app(
        settings,
        no_auth=no_auth,
        bot_settings=bot_settings,
        public_url=f"{scheme}://{host}:{port}",
        bus=service_bus(settings, embedded_default=True),
    )
    run_service(app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
