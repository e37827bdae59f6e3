"""``workbench serve ...``: run a service in the foreground (``serve asset-repository``,
``serve identity``, ``serve hub``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from workbench.cli.common import state
from workbench.cli.platform import default_home

__all__ = ["register", "serve", "service_options", "tls_files", "tls_options"]


def tls_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--cert``/``--key``: serve HTTPS with this PEM certificate (chain) and key."""
    for name, what in (("--key", "its private key"), ("--cert", "a PEM certificate (chain)")):
        command = click.option(
            name,
            name.strip("-"),
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            default=None,
            help=f"Serve HTTPS: {what} (with the other of --cert/--key).",
        )(command)
    return command


def service_options(
    default_port: int,
    *,
    host_help: str = "Interface to bind (default 127.0.0.1, loopback only).",
    data_dir_help: str = ".",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--host``, ``--port`` and ``--data-dir`` of a ``workbench serve`` command."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            envvar="WORKBENCH_HOME",
            help="Data directory (default: $WORKBENCH_HOME, else ./.workbench if it exists, "
            f"else ~/.workbench){data_dir_help}",
        )(command)
        command = click.option(
            "--port",
            type=click.IntRange(0, 65535),
            default=None,
            help=f"Port (default {default_port}).",
        )(command)
        return click.option("--host", default=None, help=host_help)(command)

    return decorate


def tls_files(cert: Path | None, key: Path | None) -> tuple[Path | None, Path | None, str]:
    """The checked ``(certfile, keyfile, scheme)`` of ``--cert``/``--key``."""
    from workbench.errors import WorkbenchError
    from workbench.services.tls import check_tls_files

    try:
        files = check_tls_files(cert, key)
    except WorkbenchError as exc:
        raise click.UsageError(str(exc)) from None
    if files is None:
        return None, None, "http"
    return files.cert, files.key, "https"


@click.group()
def serve() -> None:
    """Run a platform service in the foreground (Ctrl-C stops it)."""


@serve.command("asset-repository")
@service_options(5001)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept requests without a token (developer machines only; logs a warning).",
)
@click.option(
    "--dev-static-token",
    is_flag=True,
    envvar="WORKBENCH_DEV_STATIC_TOKEN",
    help="Development only: accept WORKBENCH_API_TOKEN instead of Identity JWTs (warns).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log format (default: $WORKBENCH_LOG_FORMAT or text).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    envvar="WORKBENCH_ASSET_REPOSITORY_WORKERS",
    help="Processes serving the port (SO_REUSEPORT): entity queries run in any of them, "
    "writes and stream data in the first (docs/performance.md).",
)
@tls_options
def asset_repository(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    no_auth: bool,
    dev_static_token: bool,
    log_format: str | None,
    workers: int,
    cert: Path | None,
    key: Path | None,
) -> None:
    """The Asset Repository: per-tenant GraphQL at /tenants/{id}/graphql, REST bulk, playground."""
    from workbench.logs import configure_logging
    from workbench.services.asset_repository.app import serve as run
    from workbench.settings import Settings

    settings = Settings()
    if dev_static_token:
        settings = settings.model_copy(update={"dev_static_token": True})
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = settings.asset_repository_port if port is None else port
    certfile, keyfile, scheme = tls_files(cert, key)
    configure_logging(logging.INFO, log_format or settings.log_format)
    shown = f", {workers} workers" if workers > 1 else ""
    click.echo(f"Asset Repository on {scheme}://{host}:{port} (data: {home}{shown})", err=True)
    click.echo(
        f"  playground: {scheme}://{host}:{port}/tenants/<tenant>/graphql/playground", err=True
    )
    if workers > 1:
        from workbench.services.asset_repository.worker_processes import WorkerOptions, run_workers

        options = WorkerOptions(
            home,
            host,
            port,
            no_auth,
            settings.dev_static_token,
            log_format=log_format,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
        run_workers(options, workers)
        return
    run(
        host=host,
        port=port,
        data_dir=home,
        no_auth=no_auth,
        settings=settings,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


@serve.command("identity")
@service_options(5003)
@tls_options
def identity(
    host: str | None, port: int | None, data_dir: Path | None, cert: Path | None, key: Path | None
) -> None:
    """The Identity service: OAuth 2.0 / OpenID Connect provider and user management."""
    from workbench.logs import configure_logging
    from workbench.services.identity.app import serve as run
    from workbench.settings import Settings

    settings = Settings()
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = settings.identity_port if port is None else port
    # the issuer (and so discovery, JWKS and every endpoint) follows the address bound, unless
    # one is configured (WORKBENCH_IDENTITY_ISSUER)
    certfile, keyfile, scheme = tls_files(cert, key)
    update: dict[str, object] = {"identity_port": port}
    if host not in ("0.0.0.0", "::", ""):
        update["service_host"] = host
    if scheme == "https" and not settings.identity_issuer:
        update["identity_issuer"] = f"https://{update.get('service_host', host)}:{port}"
    settings = settings.model_copy(update=update)
    configure_logging(logging.INFO, settings.log_format)
    click.echo(f"Identity on {scheme}://{host}:{port} (issuer {settings.issuer_url()})", err=True)
    run(
        host=host,
        port=port,
        data_dir=home,
        settings=settings,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


@serve.command("hub")
@service_options(8000, host_help="Interface the proxy binds (default 127.0.0.1).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    envvar="WORKBENCH_HUB_CONFIG",
    help="jupyterhub_config.py (default: hub_config/jupyterhub_config.py of this project).",
)
def hub(
    host: str | None, port: int | None, data_dir: Path | None, config_file: Path | None
) -> None:
    """JupyterHub (with configurable-http-proxy): tenant notebook servers, login via Identity."""
    import os

    from workbench.settings import Settings

    try:
        from jupyterhub.app import main as jupyterhub_main
    except ImportError:
        raise click.ClickException(
            "the hub needs JupyterHub: pip install 'mesh-workbench[hub]'"
        ) from None
    settings = Settings()
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = 8000 if port is None else port
    config = (
        config_file or Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"
    )
    if not config.is_file():
        raise click.ClickException(
            f"no hub configuration at {config}; pass --config or set WORKBENCH_HUB_CONFIG"
        )
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ["WORKBENCH_HUB_BIND_URL"] = f"http://{host}:{port}"
    click.echo(f"JupyterHub on http://{host}:{port}/hub/ (data: {home}, config {config})", err=True)
    jupyterhub_main(["-f", str(config)])


def register(cli: click.Group) -> None:
    cli.add_command(serve)
