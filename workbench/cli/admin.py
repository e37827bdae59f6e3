"""``workbench serve admin``: the Admin Panel (Panel dashboards behind an Identity login)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from workbench.cli.common import state
from workbench.cli.platform import default_home
from workbench.cli.serve import serve, service_options, tls_files, tls_options

__all__ = ["admin", "register"]


@click.command("admin")
@service_options(5005, data_dir_help="; the panel keeps its metrics history in <data>/admin/.")
@click.option(
    "--api-url",
    default=None,
    help="Asset Repository URL (default: the api_url setting, WORKBENCH_API_URL, else "
    "http://<service_host>:<asset_repository_port>).",
)
@click.option(
    "--controller-url",
    default=None,
    help="Communication Controller URL for the Operations page (default: the one workbench up "
    "runs, else none).",
)
@click.option(
    "--bots-url",
    default=None,
    help="Bot Service URL for the Operations page (default: the one workbench up runs, else none).",
)
@click.option(
    "--num-procs",
    type=click.IntRange(min=0),
    default=None,
    help="Server processes (forked, Linux; 0: one per core; default: the admin_num_procs "
    "setting, WORKBENCH_ADMIN_NUM_PROCS, else 1). Sessions are spread over them.",
)
@tls_options
def admin(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    api_url: str | None,
    controller_url: str | None,
    bots_url: str | None,
    num_procs: int | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """The Admin Panel: tenants, users and roles, monitoring, models, data (port 5005).

    Sign-in goes through the Identity service as the first-party client ``workbench-admin``
    (registered by ``workbench up``; redirect URI <public url>/login).
    """
    from workbench.logs import configure_logging
    from workbench.services.admin import AdminConfig
    from workbench.services.admin import serve as run
    from workbench.settings import Settings

    settings = Settings()
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = settings.admin_port if port is None else port
    certfile, keyfile, scheme = tls_files(cert, key)
    configure_logging(logging.INFO, settings.log_format)
    identity = settings.identity_url or settings.issuer_url()
    api = api_url or settings.asset_repository_url(scheme)
    public = settings.admin_public_url or f"{scheme}://{host}:{port}"
    config = AdminConfig(
        data_dir=home,
        identity_url=identity.rstrip("/"),
        identity_public_url=settings.issuer_url(),
        api_url=api.rstrip("/"),
        public_url=public.rstrip("/"),
        scrape_interval=settings.admin_scrape_interval,
        retention_s=settings.admin_metrics_retention_hours * 3600,
        # JupyterHub's proxy speaks plain HTTP on one machine (TLS ends before it at scale)
        hub_url=settings.neighbour_url("hub"),
        controller_url=controller_url or settings.neighbour_url("communication_controller", scheme),
        bots_url=bots_url or settings.neighbour_url("bot_service", scheme),
        num_procs=settings.admin_num_procs if num_procs is None else num_procs,
        prometheus_url=settings.admin_prometheus_url,
    )
    click.echo(f"Admin Panel on {public} (Identity {identity}, API {api})", err=True)
    run(config, host=host, port=port, ssl_certfile=certfile, ssl_keyfile=keyfile)


def register(cli: click.Group) -> None:
    serve.add_command(admin)
