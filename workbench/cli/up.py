"""``workbench up``: build the demo tenant if needed, then run the platform (``make run``)."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from workbench.cli.common import state

__all__ = ["register"]


def register(cli: click.Group) -> None:
    @cli.command("up")
    @click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="WORKBENCH_HOME",
        help="Data directory (default: $WORKBENCH_HOME, else ./.workbench if it exists, "
        "else ~/.workbench).",
    )
    @click.option(
        "--host", default="127.0.0.1", show_default=True, help="Interface every service binds to."
    )
    @click.option(
        "--service",
        "services",
        multiple=True,
        help="Run only these services (default: all available).",
    )
    @click.option(
        "--port",
        "port_overrides",
        multiple=True,
        metavar="SERVICE=PORT",
        help="Port of one service, e.g. asset-repository=6001 (default: 5001, 5003, hub 8000).",
    )
    @click.option("--no-demo", is_flag=True, help="Do not create the demo tenant.")
    @click.option(
        "--dev-static-token",
        is_flag=True,
        help="Development only: the Asset Repository also accepts a static token.",
    )
    @click.option(
        "--demo-days",
        type=click.IntRange(0, 60),
        default=7,
        show_default=True,
        help="Days of 1-second stream data in a new demo tenant.",
    )
    @click.option(
        "--tls",
        is_flag=True,
        help="Serve over https: --cert/--key, or a self-signed loopback certificate generated "
        "in <data>/secrets/tls (the hub is not started over https yet).",
    )
    @click.option(
        "--cert",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="PEM certificate (chain) for --tls (with --key).",
    )
    @click.option(
        "--key",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="PEM private key of --cert.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help="Asset Repository processes on its port (serve asset-repository --workers).",
    )
    def up(
        data_dir: Path | None,
        host: str,
        services: tuple[str, ...],
        port_overrides: tuple[str, ...],
        no_demo: bool,
        dev_static_token: bool,
        demo_days: int,
        tls: bool,
        cert: Path | None,
        key: Path | None,
        workers: int,
    ) -> None:
        """Run the platform on embedded backends (Ctrl-C stops everything)."""
        import workbench
        from workbench.cli.platform import default_home, remove_platform, write_platform
        from workbench.demo import DEMO_TENANT, build_demo_tenant
        from workbench.services.up import SERVICES, Supervisor, api_token

        home = default_home(data_dir or state().data_dir)
        chosen = list(services) or [s for s in SERVICES if _available(s)]
        tls_files, trust = _tls(home, tls, cert, key)
        if tls_files is not None and "hub" in chosen:
            click.echo("hub: not started with --tls (it is not served over https yet)")
            chosen.remove("hub")
        demo_range: tuple[str, str] | None = None
        if not no_demo:
            with workbench.open(home) as wb:
                if not wb.registry.exists(DEMO_TENANT):
                    click.echo(f"building the demo tenant in {home} ...")
                    build_demo_tenant(wb, days=demo_days, say=lambda m: click.echo(f"  · {m}"))
                demo_range = _demo_range(wb, DEMO_TENANT)
        ports = _ports(port_overrides)
        env: dict[str, str] = {}
        token = None
        if dev_static_token:
            token = api_token(home)
            env = {"WORKBENCH_API_TOKEN": token, "WORKBENCH_DEV_STATIC_TOKEN": "true"}
        if workers > 1:
            env["WORKBENCH_ASSET_REPOSITORY_WORKERS"] = str(workers)
        supervisor = Supervisor(
            home, host, chosen, ports=ports, env=env, say=click.echo, tls=tls_files, trust=trust
        )
        if "hub" in chosen:
            with workbench.open(home) as wb:
                supervisor.env.update(
                    _prepare_hub(wb, home, supervisor, default_tenant=DEMO_TENANT)
                )
        access = None
        if "identity" in chosen and "asset-repository" in chosen:
            from workbench.cli.login import ensure_cli_client
            from workbench.demo.logins import prepare_demo_access
            from workbench.identity.directory import Directory

            with workbench.open(home) as wb:
                access = prepare_demo_access(
                    wb,
                    playground_redirect=f"{supervisor.url('asset-repository')}/playground/callback",
                    demo_tenant=None if no_demo else DEMO_TENANT,
                    admin_url=supervisor.reachable_url("admin") if "admin" in chosen else None,
                )
                ensure_cli_client(Directory.for_workbench(wb))

        def interrupt(_: int, __: FrameType | None) -> None:
            click.echo("\nstopping ...")
            supervisor.stop()
            click.echo("stopped")

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, interrupt)
        supervisor.start()
        chosen = list(supervisor.running)
        write_platform(home, {name: supervisor.reachable_url(name) for name in chosen}, trust=trust)
        click.echo("")
        click.echo(f"Mesh Workbench is up (data: {home})")
        for name in chosen:
            click.echo(f"  {name:<17} {supervisor.url(name)}")
            for label, path in SERVICES[name].links:
                click.echo(f"    {label}: {supervisor.url(name)}{path.format(tenant=DEMO_TENANT)}")
        if access is not None:
            if access.admin_password:
                click.echo(f"  platform admin: admin / {access.admin_password}  (shown once)")
            if access.demo_user:
                click.echo(
                    f"  demo login: {access.demo_user} / {access.demo_password}  (tenant "
                    f"{DEMO_TENANT}; kept in {home / 'secrets' / 'demo-password'})"
                )
        if trust is not None:
            click.echo(f"  TLS: clients verify with {trust} (e.g. SSL_CERT_FILE={trust})")
        if token is not None:
            click.echo(f"  development API token (Authorization: Bearer ...): {token}")
        if "asset-repository" in chosen:
            click.echo("  sample query for the playground:")
            click.echo(
                "    { runtime { rtDemoEnergyEnergyMeter(first: 10) "
                "{ items { rtId name serialNumber state voltage parent { ... on "
                "DemoEnergyBuilding { name } } } } } }"
            )
            if demo_range is not None:
                click.echo(
                    f"  demo stream data (Demo.Energy/EnergyMeter, 1 s) from {demo_range[0]} "
                    f"to {demo_range[1]}; for example:"
                )
                click.echo(
                    '    { streamData { tsDemoEnergyEnergyMeterAggregate(from: "'
                    f'{demo_range[0]}", to: "{demo_range[1]}", interval: "1d", functions: '
                    "[AVG, MAX]) { items { rtId bucket voltageAvg voltageMax } } } }"
                )
            click.echo("  command line: workbench login, then workbench ... (see the README)")
        click.echo("Ctrl-C stops everything.")
        try:
            code = supervisor.wait()
        finally:
            remove_platform(home)
        if code:
            supervisor.stop()
            click.echo("stopped")
        sys.exit(code)


def _demo_range(wb: Any, tenant_id: str) -> tuple[str, str] | None:
    """The range ``[start, end)`` of the demo tenant's meter data (ISO 8601), None without data."""
    streams = wb.tenant(tenant_id).streams("Demo.Energy/EnergyMeter")
    first = streams.read(first=1).rows()
    last = streams.read(descending=True, first=1).rows()
    if not first or not last:
        return None

    def iso(value: Any) -> str:
        return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))

    return iso(first[0]["timeStamp"]), iso(last[0]["timeStamp"] + timedelta(seconds=1))


def _tls(home: Path, tls: bool, cert: Path | None, key: Path | None) -> tuple[Any, Path | None]:
    """The certificate and key to serve (given, or generated for loopback) and a CA bundle
    trusting them; ``(None, None)`` without --tls/--cert/--key."""
    from workbench.cli.serve import tls_files
    from workbench.services.tls import TlsFiles, loopback_certificate, trust_bundle

    if not (tls or cert or key):
        return None, None
    certfile, keyfile, _ = tls_files(cert, key)
    directory = home / "secrets" / "tls"
    if certfile is None or keyfile is None:
        files = loopback_certificate(directory)
        click.echo(f"TLS: self-signed loopback certificate {files.cert}")
    else:
        files = TlsFiles(certfile.resolve(), keyfile.resolve())  # children: any cwd
    return files, trust_bundle(files.cert, directory / "ca-bundle.pem")


def _ports(overrides: tuple[str, ...]) -> dict[str, int]:
    ports = {}
    for item in overrides:
        name, _, number = item.partition("=")
        if not number.isdigit():
            raise click.BadParameter(f"{item!r} is not SERVICE=PORT", param_hint="--port")
        ports[name] = int(number)
    return ports


def _available(service: str) -> bool:
    import importlib.util

    if service == "hub":
        from workbench.hub.provisioning import proxy_command

        if importlib.util.find_spec("jupyterhub") is None:
            click.echo("hub: not started (pip install 'mesh-workbench[hub]')")
            return False
        if proxy_command() is None:
            from workbench.services.up import SERVICES

            click.echo(
                "hub: not started: its proxy (configurable-http-proxy) is missing; the other "
                f"services start. {SERVICES['hub'].optional_hint}"
            )
            return False
        return importlib.util.find_spec("workbench.services.identity.app") is not None
    module = {
        "asset-repository": "workbench.services.asset_repository.app",
        "identity": "workbench.services.identity.app",
        "admin": "panel",
        "communication-controller": "workbench.services.communication_controller.app",
        "bot-service": "papermill",
    }[service]
    return importlib.util.find_spec(module) is not None


def _prepare_hub(wb: Any, home: Path, supervisor: Any, *, default_tenant: str) -> dict[str, str]:
    """Register the hub's OAuth client (first start), create the key encrypting auth_state,
    and return what the hub needs to know beyond the supervisor's addresses."""
    from workbench.hub.provisioning import crypt_key, register_hub_client
    from workbench.identity.directory import Directory

    def reachable(service: str) -> str:
        url: str = supervisor.url(service)
        return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:")

    register_hub_client(Directory.for_workbench(wb), home, reachable("hub"))
    crypt_key(home)
    from workbench.settings import Settings
    from workbench.testing.http import free_port

    settings = Settings()

    def internal_port(field: str) -> str:
        """The hub's own API and the proxy's API are internal: the configured port, else any
        free loopback port (their defaults may be taken on a developer's machine)."""
        return str(getattr(settings, field) if field in settings.model_fields_set else free_port())

    env = {
        "WORKBENCH_HUB_DEFAULT_TENANT": default_tenant,
        "WORKBENCH_HUB_API_PORT": internal_port("hub_api_port"),
        "WORKBENCH_HUB_PROXY_API_PORT": internal_port("hub_proxy_api_port"),
    }
    if "asset-repository" in supervisor.ports:
        env["WORKBENCH_API_URL"] = reachable("asset-repository")
    return env
