"""The Identity service (port 5003): OAuth 2.0 / OpenID Connect provider and management API.

This module assembles the application; the routes live in :mod:`.oauth` (discovery,
JWKS, authorize's protocol partners: token, revocation, introspection, device authorization,
userinfo, end-session, the revocation list), :mod:`.pages` (login, authorize and
consent, device and upstream login pages) and :mod:`.management` (the management REST API
under ``/api``, UserManagement / TenantManagement roles); what they share is in
:mod:`.service`. Protocol work is delegated to
:class:`workbench.identity.provider.Provider`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import click
from fastapi import FastAPI

from workbench.client.local import Workbench, open_workbench
from workbench.identity.directory import Directory
from workbench.identity.provider import Provider, ProviderConfig
from workbench.identity.throttle import LoginThrottle
from workbench.services.app import run_service, service_app
from workbench.services.identity import management, oauth, pages
from workbench.services.identity.service import IdentityService
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings

__all__ = ["SERVICE_NAME", "IdentityService", "build_service", "create_app", "serve"]

log = logging.getLogger("workbench.services.identity.app")

SERVICE_NAME = "identity"


def build_service(
    settings: Settings, workbench: Workbench | None = None, *, announce: bool = True
) -> IdentityService:
    """Open the directory, bootstrap the admin (printing a generated password once) and make
    the provider."""
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    directory = Directory.for_workbench(opened)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    generated = directory.bootstrap(admin_password)
    if generated is not None and announce:
        click.echo(
            "\n  Identity bootstrap: created user 'admin' in tenant 'system' with password\n"
            f"      {generated}\n  It is shown only this once; change it with "
            "'workbench users passwd admin --tenant system'.\n",
            err=True,
        )
    for record in opened.registry.list():
        directory.ensure_builtin_groups(record.id)
    config = ProviderConfig(
        issuer=settings.issuer_url(),
        audience=settings.identity_audience,
        access_token_ttl=settings.identity_access_token_ttl,
        refresh_token_ttl=settings.identity_refresh_token_ttl,
        key_rotation_days=settings.identity_key_rotation_days,
    )
    provider = Provider(directory, config)
    return IdentityService(
        workbench=opened,
        settings=settings,
        directory=directory,
        provider=provider,
        metrics=ServiceMetrics(SERVICE_NAME),
        throttle=LoginThrottle(settings.identity_login_max_failures),
        owns_workbench=owns,
    )


def create_app(
    settings: Settings | None = None,
    *,
    workbench: Workbench | None = None,
    announce: bool = True,
) -> FastAPI:
    """The Identity application (``workbench`` defaults to opening ``settings.home``)."""
    settings = settings or Settings()
    service = build_service(settings, workbench, announce=announce)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("identity ready", extra={"issuer": service.issuer})
        try:
            yield
        finally:
            service.close()

    app = service_app(
        title="Mesh Workbench Identity",
        description="OAuth 2.0 / OpenID Connect provider: login, tokens, users, roles, clients.",
        service=service,
        metrics=service.metrics,
        lifespan=lifespan,
        routers=[
            oauth.router,
            pages.router,
            management.api,
            management.router,
        ],
    )
    return app


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 5003,
    data_dir: Path | None = None,
    settings: Settings | None = None,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the Identity service under uvicorn until interrupted."""
    settings = settings or Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"home": data_dir})
    run_service(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
