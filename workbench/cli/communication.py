"""``workbench serve communication-controller``, ``workbench adapter run``, ``workbench
pipelines validate|execute|executions`` and ``workbench adapters list|show|deploy``."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

import click

from workbench.cli.common import emit, state
from workbench.cli.platform import default_home
from workbench.cli.serve import serve, tls_files, tls_options

__all__ = ["register"]

_CONTROLLER = click.option(
    "--controller",
    "controller_url",
    envvar="WORKBENCH_CONTROLLER_URL",
    default="http://127.0.0.1:5015",
    show_default=True,
    help="Communication Controller URL ($WORKBENCH_CONTROLLER_URL).",
)
_TOKEN = click.option(
    "--token",
    envvar="WORKBENCH_API_TOKEN",
    default=None,
    help="Bearer token ($WORKBENCH_API_TOKEN); adapters: a client-credentials token.",
)
_TENANT = click.option("--tenant", "tenant_id", required=True, help="The tenant id.")


@serve.command("communication-controller")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=5015, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="WORKBENCH_HOME",
    help="Data directory (default: $WORKBENCH_HOME, else ./.workbench or ~/.workbench).",
)
@click.option("--no-auth", is_flag=True, help="Accept requests without a token (warns).")
@click.option(
    "--heartbeat-seconds",
    type=float,
    default=5.0,
    envvar="WORKBENCH_ADAPTER_HEARTBEAT_SECONDS",
    show_default=True,
    help="How often adapters send a heartbeat.",
)
@click.option(
    "--offline-after-seconds",
    type=float,
    default=15.0,
    envvar="WORKBENCH_ADAPTER_OFFLINE_AFTER_SECONDS",
    show_default=True,
    help="An adapter without a heartbeat for this long is Offline.",
)
@tls_options
def communication_controller(
    host: str,
    port: int,
    data_dir: Path | None,
    no_auth: bool,
    heartbeat_seconds: float,
    offline_after_seconds: float,
    cert: Path | None,
    key: Path | None,
) -> None:
    """The Communication Controller: adapter hub at /tenants/{id}/adapters/hub, REST, metrics."""
    from workbench.logs import configure_logging
    from workbench.services.communication_controller.app import serve as run

    home = default_home(data_dir or state().data_dir)
    certfile, keyfile, scheme = tls_files(cert, key)
    configure_logging(logging.INFO)
    click.echo(f"Communication Controller on {scheme}://{host}:{port} (data: {home})", err=True)
    run(
        host=host,
        port=port,
        data_dir=home,
        no_auth=no_auth,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        heartbeat_seconds=heartbeat_seconds,
        offline_after_seconds=offline_after_seconds,
    )


@click.group("adapter")
def adapter() -> None:
    """Run a mesh adapter process."""


@adapter.command("run")
@_TENANT
@click.option("--adapter", "adapter_rt_id", required=True, help="rtId of the Adapter entity.")
@_CONTROLLER
@click.option(
    "--api-url",
    envvar="WORKBENCH_API_URL",
    default="http://127.0.0.1:5001",
    show_default=True,
    help="Asset Repository URL: entity and stream writes go through it.",
)
@_TOKEN
@click.option(
    "--client-id",
    envvar="WORKBENCH_CLIENT_ID",
    default=None,
    help="OAuth client of the adapter (client credentials from Identity).",
)
@click.option("--client-secret", envvar="WORKBENCH_CLIENT_SECRET", default=None)
@click.option(
    "--identity-url",
    envvar="WORKBENCH_IDENTITY_URL",
    default=None,
    help="Identity service URL (default: the configured issuer).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="WORKBENCH_HOME",
    help="Data directory of the embedded bus (when WORKBENCH_BUS_URL is not set).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve FromHttpRequest@1 triggers on this port (127.0.0.1) under /<tenant><path>.",
)
@click.option(
    "--edge",
    is_flag=True,
    help="Run as an edge adapter: everything it sends goes through a durable outbox, it keeps "
    "working while the controller or the bus is unreachable, and stream writes go over the bus "
    "(no Asset Repository needed).",
)
@click.option(
    "--edge-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Edge state (outbox, last configuration); default DATA_DIR/edge/TENANT/ADAPTER.",
)
@click.option(
    "--outbox-max-messages",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Edge: messages kept while the link is down; past it the oldest are dropped (counted).",
)
@click.option(
    "--outbox-max-age",
    type=click.FloatRange(min=1.0),
    default=7 * 86400.0,
    show_default=True,
    help="Edge: seconds a message is kept while the link is down; older ones are dropped.",
)
def adapter_run(
    tenant_id: str,
    adapter_rt_id: str,
    controller_url: str,
    api_url: str,
    token: str | None,
    client_id: str | None,
    client_secret: str | None,
    identity_url: str | None,
    data_dir: Path | None,
    http_port: int | None,
    edge: bool,
    edge_dir: Path | None,
    outbox_max_messages: int,
    outbox_max_age: float,
) -> None:
    """Register with the controller, receive the pipelines, run them until Ctrl-C."""
    from workbench.client.remote import RemoteTenant
    from workbench.communication.adapter import AdapterRuntime
    from workbench.communication.edge import EdgeState, EdgeTenant
    from workbench.logs import configure_logging
    from workbench.messaging.registry import bus_from_url, settings_bus_url
    from workbench.settings import Settings

    configure_logging(logging.INFO)
    settings = Settings().model_copy(update={"home": default_home(data_dir or state().data_dir)})
    token_provider = None
    auth = None
    if client_id and client_secret and edge:
        # the edge may start offline: a fresh token at each connection attempt
        def token_provider() -> str:
            return _client_credentials_token(settings, client_id, client_secret, identity_url)

    elif client_id and client_secret:
        from workbench.client.client_credentials import ClientCredentialsAuth

        # tokens live minutes, the adapter days: renewed before they expire (and after a 401)
        auth = ClientCredentialsAuth(
            lambda: _client_credentials_grant(settings, client_id, client_secret, identity_url)
        )
        token = auth.token()  # fails at start when the Identity service refuses the client
        token_provider = auth.token
    link = bus_from_url(settings_bus_url(settings), tenant_id)
    state_dir: EdgeState | None = None
    tenant: Any
    if edge:
        state_dir = EdgeState(edge_dir or settings.home / "edge" / tenant_id / adapter_rt_id)
        bus: Any = state_dir.open_bus(
            link, max_messages=outbox_max_messages, max_age_seconds=outbox_max_age
        )
        tenant = EdgeTenant(tenant_id, bus)
        click.echo(f"edge state in {state_dir.directory}", err=True)
    else:
        bus = link
        tenant = RemoteTenant(api_url, tenant_id, token=token, auth=auth)
    click.echo(f"adapter {adapter_rt_id} of tenant {tenant_id} -> {controller_url}", err=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runtime = AdapterRuntime(
            controller_url=controller_url,
            tenant_id=tenant_id,
            adapter_rt_id=adapter_rt_id,
            tenant=tenant,
            bus=bus,
            token=token,
            http_port=http_port,
            token_provider=token_provider,
            edge=state_dir,
        )
        try:
            await runtime.run(stop)
        finally:
            await bus.aclose()

    try:
        asyncio.run(main())
    finally:
        tenant.close()


def _client_credentials_token(
    settings: Any, client_id: str, secret: str, identity_url: str | None
) -> str:
    return _client_credentials_grant(settings, client_id, secret, identity_url)[0]


def _client_credentials_grant(
    settings: Any, client_id: str, secret: str, identity_url: str | None
) -> tuple[str, float]:
    """A token of the client from the Identity service and the seconds it is valid."""
    import httpx

    from workbench.errors import BackendUnavailable, Unauthenticated

    url = (identity_url or settings.identity_url or settings.issuer_url()).rstrip("/")
    try:
        response = httpx.post(
            f"{url}/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the Identity service at {url} is unreachable: {exc}") from exc
    if response.status_code != 200:
        raise Unauthenticated(f"the Identity service refused client {client_id!r}: {response.text}")
    body = response.json()
    return str(body["access_token"]), float(body.get("expires_in") or 300)


@click.group("pipelines")
def pipelines() -> None:
    """Validate, execute and inspect pipelines."""


@pipelines.command("validate")
@click.option("--tenant", "tenant_id", default=None, help="(unused offline; accepted for symmetry)")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def pipelines_validate(tenant_id: str | None, file: Path) -> None:
    """Check a pipeline definition FILE offline (a definition, or a runtime file holding
    Pipeline entities); exit 1 listing every problem."""
    import yaml

    from workbench.communication import validate_pipeline
    from workbench.communication.definition import ROOT_KEYS
    from workbench.errors import ErrorDetail, ValidationError

    text = file.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    definitions: list[tuple[str, str]] = []
    if isinstance(document, dict) and "entities" in document and not set(ROOT_KEYS) & set(document):
        for entity in document.get("entities") or []:
            for attribute in entity.get("attributes") or []:
                if attribute.get("id") == "System.Communication/PipelineDefinition":
                    definitions.append((str(entity.get("rtId")), str(attribute.get("value"))))
    else:
        definitions.append((file.name, text))
    problems: list[ErrorDetail] = []
    for name, definition in definitions:
        problems += validate_pipeline(definition, name=name)
    report = {
        "file": str(file),
        "pipelines": len(definitions),
        "problems": [str(p) for p in problems],
    }
    if problems:
        raise ValidationError(
            f"{file}: {len(problems)} problem(s) in {len(definitions)} pipeline(s)", problems
        )
    emit(report, lambda c: c.print(f"[green]{file}: {len(definitions)} pipeline(s) valid[/]"))


def _controller_call(
    controller_url: str, token: str | None, method: str, path: str, **kwargs: Any
) -> Any:
    import httpx

    from workbench.client.results import error_from_code

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(
            method, controller_url.rstrip("/") + path, headers=headers, timeout=330, **kwargs
        )
    except httpx.TransportError as exc:
        from workbench.errors import BackendUnavailable

        raise BackendUnavailable(
            f"the Communication Controller at {controller_url} is unreachable ({exc}); start it "
            "with `workbench up` or `workbench serve communication-controller`"
        ) from exc
    if response.status_code >= 400:
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        error = body if isinstance(body, dict) else {}
        raise error_from_code(error.get("code", "INTERNAL"), error.get("message", response.text))
    return response.json()


@pipelines.command("execute")
@_TENANT
@click.argument("rt_id")
@click.option("--input", "input_json", default=None, help="The data context, as JSON.")
@click.option(
    "--wait",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the result (0: do not wait).",
)
@_CONTROLLER
@_TOKEN
def pipelines_execute(
    tenant_id: str,
    rt_id: str,
    input_json: str | None,
    wait: float,
    controller_url: str,
    token: str | None,
) -> None:
    """Run pipeline RT_ID on its adapter now."""
    body = {"input": json.loads(input_json) if input_json else None}
    params = {"wait": wait} if wait else {}
    result = _controller_call(
        controller_url,
        token,
        "POST",
        f"/tenants/{tenant_id}/pipelines/{rt_id}/execute",
        json=body,
        params=params,
    )
    emit(
        result,
        lambda c: c.print(
            f"{rt_id}: {result.get('status')}"
            + (f" in {result['durationMs']:.1f} ms" if result.get("durationMs") is not None else "")
            + (f"\n[red]{result['error']}[/]" if result.get("error") else "")
        ),
    )


@pipelines.command("executions")
@_TENANT
@click.argument("rt_id")
@click.option("--first", type=int, default=20, show_default=True)
@_CONTROLLER
@_TOKEN
def pipelines_executions(
    tenant_id: str, rt_id: str, first: int, controller_url: str, token: str | None
) -> None:
    """The latest executions of pipeline RT_ID."""
    rows = _controller_call(
        controller_url,
        token,
        "GET",
        f"/tenants/{tenant_id}/pipelines/{rt_id}/executions",
        params={"first": first},
    )

    def human(c: Any) -> None:
        for row in rows:
            c.print(
                f"{row.get('startedAt')}  {row.get('status'):<10} {row.get('triggerType'):<10}"
                f" {row.get('durationMs') or 0:8.1f} ms  {row.get('errorMessage') or ''}"
            )

    emit(rows, human)


@click.group("adapters")
def adapters() -> None:
    """Adapters of a tenant, as the Communication Controller sees them."""


@adapters.command("list")
@_TENANT
@_CONTROLLER
@_TOKEN
def adapters_list(tenant_id: str, controller_url: str, token: str | None) -> None:
    """Every adapter with its communication and configuration state."""
    rows = _controller_call(controller_url, token, "GET", f"/tenants/{tenant_id}/adapters")

    def human(c: Any) -> None:
        for row in rows:
            c.print(
                f"{row['rtId']}  {row.get('name')!s:<24} "
                f"{row.get('communicationState') or 'Unregistered':<13}"
                f"{row.get('configurationState') or 'Unconfigured'}"
            )

    emit(rows, human)


@adapters.command("show")
@_TENANT
@click.argument("rt_id")
@_CONTROLLER
@_TOKEN
def adapters_show(tenant_id: str, rt_id: str, controller_url: str, token: str | None) -> None:
    """One adapter, with the configuration the controller pushes to it."""
    emit(_controller_call(controller_url, token, "GET", f"/tenants/{tenant_id}/adapters/{rt_id}"))


@adapters.command("deploy")
@_TENANT
@click.argument("rt_id")
@_CONTROLLER
@_TOKEN
def adapters_deploy(tenant_id: str, rt_id: str, controller_url: str, token: str | None) -> None:
    """Push the adapter's configuration now."""
    emit(
        _controller_call(
            controller_url, token, "POST", f"/tenants/{tenant_id}/adapters/{rt_id}/deploy"
        )
    )


@click.group("dataflows")
def dataflows() -> None:
    """Data flows: their pipelines, adapters and triggers."""


@dataflows.command("status")
@_TENANT
@click.argument("rt_id")
@_CONTROLLER
@_TOKEN
def dataflows_status(tenant_id: str, rt_id: str, controller_url: str, token: str | None) -> None:
    """The data flow's pipelines with their deployment and adapter states, and its triggers."""
    flow = _controller_call(controller_url, token, "GET", f"/tenants/{tenant_id}/dataflows/{rt_id}")

    def human(c: Any) -> None:
        c.print(f"[bold]{flow.get('name')}[/] ({rt_id})")
        for p in flow["pipelines"]:
            c.print(
                f"  pipeline {p['rtId']} {p.get('name')!s:<20} {p['deploymentState']:<10} "
                f"adapter {p.get('adapterRtId')} {p.get('communicationState') or '-'}/"
                f"{p.get('configurationState') or '-'}"
            )
        for t in flow["triggers"]:
            c.print(f"  trigger  {t['rtId']} {t.get('cronExpression')} -> {t.get('pipelineRtId')}")

    emit(flow, human)


@dataflows.command("deploy")
@_TENANT
@click.argument("rt_id")
@_CONTROLLER
@_TOKEN
def dataflows_deploy(tenant_id: str, rt_id: str, controller_url: str, token: str | None) -> None:
    """Push the configuration to every connected adapter of the data flow."""
    emit(
        _controller_call(
            controller_url, token, "POST", f"/tenants/{tenant_id}/dataflows/{rt_id}/deploy"
        )
    )


@click.group("triggers")
def triggers() -> None:
    """Pipeline triggers (cron schedules fired by the controller)."""


@triggers.command("deploy")
@_TENANT
@_CONTROLLER
@_TOKEN
def triggers_deploy(tenant_id: str, controller_url: str, token: str | None) -> None:
    """Reload the tenant's triggers now and show their next fire times."""
    emit(_controller_call(controller_url, token, "POST", f"/tenants/{tenant_id}/triggers/deploy"))


def register(cli: click.Group) -> None:
    for group in (adapter, adapters, pipelines, dataflows, triggers):
        cli.add_command(group)
