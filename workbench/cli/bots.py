"""``workbench bots ...`` (the Bot Service's REST API), ``workbench serve bot-service`` and
``workbench serve bot-worker``.

The Bot Service is found at ``--bot-url`` / ``$WORKBENCH_BOT_SERVICE_URL``, else the one of the
platform ``workbench up`` runs on the data directory. Requests carry the login of
``workbench login`` (or ``$WORKBENCH_API_TOKEN``). Exit status: 0 done, 1 refused or failed
(``bots run --wait`` exits 1 when the run did not succeed), 2 usage.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, state, wb_command
from workbench.cli.platform import default_home
from workbench.cli.serve import serve, service_options, tls_files, tls_options
from workbench.errors import BackendUnavailable, Unauthenticated, WorkbenchError

__all__ = ["bots", "register"]

F = TypeVar("F", bound=Callable[..., Any])
tenant_option = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")
_bot_url: dict[str, str | None] = {"value": None}


def _set_bot_url(_: click.Context, __: click.Parameter, value: str | None) -> None:
    if value:
        _bot_url["value"] = value.rstrip("/")


bot_url_option = click.option(
    "--bot-url",
    envvar="WORKBENCH_BOT_SERVICE_URL",
    expose_value=False,
    callback=_set_bot_url,
    help="Bot Service URL (default: the platform's on the data directory).",
)


def _service() -> tuple[str, dict[str, str]]:
    from workbench.cli.login import access_token
    from workbench.cli.platform import running_platform

    url = _bot_url["value"]
    platform = running_platform(default_home(state().data_dir))
    if url is None and platform is not None:
        url = platform.urls.get("bot-service")
    if not url:
        raise BackendUnavailable(
            "no Bot Service to talk to: start the platform (`workbench up`) or pass --bot-url "
            "(or set WORKBENCH_BOT_SERVICE_URL)"
        )
    api_url = (platform.api_url if platform else None) or state().url or url
    token = access_token(api_url)
    if token is None:
        raise Unauthenticated("the Bot Service needs a login: run `workbench login` first")
    return url, {"Authorization": f"Bearer {token}"}


def call(method: str, path: str, **kwargs: Any) -> Any:
    url, headers = _service()
    try:
        response = httpx.request(method, url + path, headers=headers, timeout=660, **kwargs)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the Bot Service at {url} is not reachable: {exc}") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise WorkbenchError(f"{response.status_code}: {message}")
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


@click.group()
def bots() -> None:
    """Scheduled notebook bots: list, show, run, runs, logs, enable, disable."""


def bots_command(name: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        wb_command(bots, name)(bot_url_option(func))
        return func

    return decorate


@bots_command("list")
@tenant_option
def list_(tenant_id: str) -> None:
    """The tenant's deployed bots with their schedule and last run."""
    rows = call("GET", f"/tenants/{tenant_id}/bots")

    def human(console: Console) -> None:
        table = Table("bot", "version", "schedule", "enabled", "last run", "status")
        for r in rows:
            last = r["lastRun"] or {}
            table.add_row(
                r["name"],
                str(r["version"]),
                r["schedule"],
                "yes" if r["enabled"] else "no",
                last.get("queuedAt") or "-",
                last.get("status") or "-",
            )
        console.print(table)

    emit(rows, human)


@bots_command("show")
@tenant_option
@click.argument("name")
def show(tenant_id: str, name: str) -> None:
    """One bot: schedule, settings, state and last run."""
    data = call("GET", f"/tenants/{tenant_id}/bots/{name}")
    emit(data)


@bots_command("run")
@tenant_option
@click.argument("name")
@click.option("-p", "--parameter", "parameters", multiple=True, help="NAME=VALUE (JSON or text).")
@click.option(
    "--wait", is_flag=True, help="Wait for the run to finish; exit 1 unless it succeeded."
)
@click.option("--timeout", type=float, default=600.0, help="How long --wait waits (s).")
def run(tenant_id: str, name: str, parameters: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Run a bot now."""
    import json

    values: dict[str, Any] = {}
    for item in parameters:
        key, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--parameter")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    body = {"parameters": values, "wait": wait, "timeout": timeout}
    record = call("POST", f"/tenants/{tenant_id}/bots/{name}/runs", json=body)
    emit(
        record,
        lambda c: c.print(
            f"run {record['run_id']}: {record['status']}"
            + (f" ({record['error']})" if record.get("error") else "")
        ),
    )
    if wait and record["status"] != "succeeded":
        sys.exit(1)


@bots_command("runs")
@tenant_option
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True)
def runs(tenant_id: str, name: str, limit: int) -> None:
    """A bot's runs, newest first."""
    rows = call("GET", f"/tenants/{tenant_id}/bots/{name}/runs", params={"limit": limit})

    def human(console: Console) -> None:
        table = Table("run", "trigger", "status", "started", "seconds", "error")
        for r in rows:
            table.add_row(
                r["run_id"],
                r["trigger"],
                r["status"],
                r["startedAt"] or "-",
                str(r["seconds"] or "-"),
                (r["error"] or "")[:60],
            )
        console.print(table)

    emit(rows, human)


@bots_command("logs")
@tenant_option
@click.argument("name")
@click.argument("run_id")
def logs(tenant_id: str, name: str, run_id: str) -> None:
    """A run's log (what the kernel printed)."""
    text = call("GET", f"/tenants/{tenant_id}/bots/{name}/runs/{run_id}/log")
    emit({"run_id": run_id, "log": text}, lambda c: click.echo(text, nl=False))


@bots_command("enable")
@tenant_option
@click.argument("name")
def enable(tenant_id: str, name: str) -> None:
    """Let the bot's schedule fire again."""
    emit(call("POST", f"/tenants/{tenant_id}/bots/{name}/enable"), lambda c: c.print("enabled"))


@bots_command("disable")
@tenant_option
@click.argument("name")
def disable(tenant_id: str, name: str) -> None:
    """Stop the bot's schedule (manual runs still work)."""
    emit(call("POST", f"/tenants/{tenant_id}/bots/{name}/disable"), lambda c: c.print("disabled"))


broker_url_option = click.option(
    "--broker-url",
    default=None,
    help="RabbitMQ of the bot workers, amqp://USER:PASS@HOST:PORT/VHOST (default: "
    "$WORKBENCH_BOT_BROKER_URL, else an amqp:// $WORKBENCH_BUS_URL).",
)
queue_option = click.option(
    "--queue", default=None, help="Celery queue of bot runs (default: $WORKBENCH_BOT_QUEUE)."
)


def _bot_settings(**changes: Any) -> Any:
    from workbench.bots.settings import BotServiceSettings

    settings = BotServiceSettings()
    return settings.model_copy(update={k: v for k, v in changes.items() if v is not None})


@serve.command("bot-service")
@service_options(5009)
@click.option("--no-auth", is_flag=True, help="Accept requests without a token (developers only).")
@click.option(
    "--executor",
    type=click.Choice(["local", "celery"]),
    default=None,
    help="Where runs execute: local processes, or bot workers on RabbitMQ (default: "
    "$WORKBENCH_BOT_EXECUTOR, else local).",
)
@broker_url_option
@queue_option
@tls_options
def bot_service(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    no_auth: bool,
    executor: str | None,
    broker_url: str | None,
    queue: str | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """The Bot Service: scheduled notebook bots, run history, promotions."""
    from workbench.logs import configure_logging
    from workbench.services.bot_service.app import serve as run_bot_service
    from workbench.settings import Settings

    settings = Settings()
    bot_settings = _bot_settings(executor=executor, broker_url=broker_url, queue=queue)
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = bot_settings.port if port is None else port
    certfile, keyfile, scheme = tls_files(cert, key)
    configure_logging(logging.INFO, settings.log_format)
    click.echo(
        f"Bot Service on {scheme}://{host}:{port} (data: {home}, executor {bot_settings.executor})",
        err=True,
    )
    os.environ.setdefault("WORKBENCH_HOME", str(home))
    run_bot_service(
        host=host,
        port=port,
        data_dir=home,
        no_auth=no_auth,
        settings=settings,
        bot_settings=bot_settings,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


@serve.command("bot-worker")
@service_options(
    5010,
    host_help="Interface of the worker's /healthz, /readyz and /metrics (default 127.0.0.1).",
    data_dir_help="; runs execute in scratch folders under it.",
)
@broker_url_option
@queue_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Runs at the same time (default: $WORKBENCH_BOT_WORKER_CONCURRENCY, else 2).",
)
@click.option(
    "--pool-size",
    type=click.IntRange(0, 64),
    default=None,
    help="Pre-started kernels per tenant (default: $WORKBENCH_BOT_POOL_SIZE, else 1).",
)
@click.option("--hostname", default=None, help="Celery node name (default bot-worker@<host>).")
@click.option(
    "--check",
    is_flag=True,
    help="Do not run: ping the worker of --hostname through the broker and exit 0 when it "
    "answers, 1 when not (a liveness probe).",
)
def bot_worker(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    broker_url: str | None,
    queue: str | None,
    concurrency: int | None,
    pool_size: int | None,
    hostname: str | None,
    check: bool,
) -> None:
    """A bot worker: executes Bot Service runs from RabbitMQ (start any number of them)."""
    from workbench.bots.worker import DEFAULT_PORT, BotWorker, default_hostname
    from workbench.logs import configure_logging
    from workbench.settings import Settings

    settings = Settings()
    bot_settings = _bot_settings(
        broker_url=broker_url,
        queue=queue,
        worker_concurrency=concurrency,
        pool_size=pool_size,
    )
    try:
        broker = bot_settings.broker(settings.bus_url)
    except WorkbenchError as exc:
        raise click.UsageError(exc.message) from None
    name = hostname or default_hostname()
    if check:
        from workbench.bots.celery_app import celery_app

        answers = celery_app(broker, bot_settings.queue).control.ping([name], timeout=5.0)
        if not answers:
            click.echo(f"bot worker {name} did not answer a ping through the broker", err=True)
            sys.exit(1)
        click.echo(f"bot worker {name}: ok")
        return
    home = default_home(data_dir or state().data_dir)
    host = host or settings.service_host
    port = DEFAULT_PORT if port is None else port
    configure_logging(logging.INFO, settings.log_format)
    worker = BotWorker(
        broker,
        home=home,
        queue=bot_settings.queue,
        concurrency=bot_settings.worker_concurrency,
        pool_size=bot_settings.pool_size,
        hostname=name,
    )
    server = worker.serve_http(host, port)
    click.echo(
        f"Bot worker {name} on queue {bot_settings.queue!r}: {bot_settings.worker_concurrency} "
        f"run(s) at once; health on http://{host}:{server.server_port}/healthz (data: {home})",
        err=True,
    )
    sys.exit(worker.run())


def register(cli: click.Group) -> None:
    cli.add_command(bots)
