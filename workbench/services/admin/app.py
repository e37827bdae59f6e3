"""Serving the Admin Panel: a Bokeh/Panel server with Identity login, health and metrics.

Login is the OAuth 2.0 authorization code flow with PKCE (S256) against the Identity service,
as the public first-party client :data:`ADMIN_CLIENT` of the system tenant (Panel's
``auth_code`` provider; the token exchange runs server-side, the browser only visits
Identity's login page). Each browser session gets its own :class:`~workbench.admin.AdminShell`
acting with that session's access token. Every asset (BokehJS, Panel, Tabulator) is served by
this server from the installed packages (``resources=server``): nothing comes from a CDN.

``/healthz``, ``/readyz`` and ``/metrics`` answer without login. A :class:`MetricsScraper`
thread scrapes the platform's services into a SQLite store under the data directory
(``admin/metrics.db``) for the monitoring page's history.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.admin.api import AdminApi, ServiceEndpoint, shared_tls_context
from workbench.admin.metrics_history import MetricsHistory, PrometheusHistory, StoreHistory
from workbench.admin.metrics_store import MetricsScraper, MetricsStore
from workbench.admin.model_cache import ModelCache
from workbench.secret_files import read_or_create_secret
from workbench.settings import Settings

__all__ = ["ADMIN_CLIENT", "SERVICE_NAME", "AdminConfig", "build_server", "serve"]

log = logging.getLogger("workbench.services.admin")

SERVICE_NAME = "admin"
ADMIN_CLIENT = "workbench-admin"
LOGIN_SCOPES = ["openid", "profile", "workbench_api", "roles", "allowed_tenants"]


@dataclass
class AdminConfig:
    """Where the panel runs and which services it talks to."""

    data_dir: Path
    identity_url: str
    api_url: str
    public_url: str
    #: the URL the browser reaches Identity at (default: ``identity_url``)
    identity_public_url: str | None = None
    services: list[ServiceEndpoint] = field(default_factory=list)
    scrape_interval: float = 5.0
    retention_s: float = 24 * 3600
    #: JupyterHub's public URL, watched on the monitoring page when given
    hub_url: str | None = None
    #: the Communication Controller and the Bot Service, when the platform runs them
    controller_url: str | None = None
    bots_url: str | None = None
    #: benchmarks and tests only (not settable from ``workbench serve admin`` or environment
    #: variables): when set, the server skips the OAuth login and every session acts with this
    #: token (e.g. an Asset Repository's development static token) for ``session_tenants``
    #: with ``session_roles``
    session_token: str | None = None
    session_tenants: list[str] = field(default_factory=list)
    session_roles: list[str] = field(default_factory=list)
    #: a Prometheus server the monitoring plots query instead of the panel's own store
    prometheus_url: str | None = None
    #: server processes (forked, Linux only; 0: one per core): sessions are spread over them,
    #: each process keeps its own model cache, and one of them scrapes the metrics
    num_procs: int = 1


def _handlers(config: AdminConfig, metrics: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    from prometheus_client import generate_latest
    from tornado.web import RequestHandler

    class Healthz(RequestHandler):
        def get(self) -> None:
            self.write({"status": "ok"})

    class Readyz(RequestHandler):
        def get(self) -> None:
            import httpx

            checks: dict[str, Any] = {}
            for name, url in (
                ("identity", config.identity_url),
                ("assetRepository", config.api_url),
            ):
                try:
                    answer = httpx.get(f"{url}/healthz", timeout=3, verify=shared_tls_context())
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                checks[name] = {"ok": ok}
            ready = all(c["ok"] for c in checks.values())
            self.set_status(200 if ready else 503)
            self.write({"status": "ready" if ready else "not ready", "checks": checks})

    class Metrics(RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/plain; version=0.0.4")
            self.write(generate_latest(metrics.registry))

    return [("/healthz", Healthz, {}), ("/readyz", Readyz, {}), ("/metrics", Metrics, {})]


def watched_services(config: AdminConfig) -> list[ServiceEndpoint]:
    """The services the monitoring page checks and whose metrics are scraped."""
    if config.services:
        return list(config.services)
    services = [
        ServiceEndpoint("identity", config.identity_url),
        ServiceEndpoint("asset-repository", config.api_url),
    ]
    for name, url in (
        ("communication-controller", config.controller_url),
        ("bot-service", config.bots_url),
    ):
        if url:
            services.append(ServiceEndpoint(name, url))
    if config.hub_url:
        services.append(ServiceEndpoint("hub", config.hub_url.rstrip("/") + "/hub/api"))
    return services


def build_server(
    config: AdminConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 5005,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> Any:
    """The (not yet started) Panel server of the Admin Panel."""
    import panel as pn

    from workbench.admin.shell import AdminShell, admin_page
    from workbench.services.metrics import ServiceMetrics

    pn.config.resources = "server"  # BokehJS, Panel and extension bundles from this server
    # no ``nthreads``: Panel would hand a widget's change and a button's click to its thread
    # pool separately, and the click could run before the new value is applied. Events are
    # applied on the event loop in the order they came; the pages' actions run on worker
    # threads one at a time per session (workbench.admin.views.base.in_background), so a page
    # waiting on a service's answer never stalls the other sessions (or /healthz)
    pn.extension("tabulator", design="bootstrap")
    secrets_dir = config.data_dir / "secrets"
    cookie_secret = read_or_create_secret(secrets_dir / "admin-cookie-secret")
    from cryptography.fernet import Fernet

    encryption_key = read_or_create_secret(
        secrets_dir / "admin-oauth-key", make=lambda: Fernet.generate_key().decode()
    )
    store_dir = config.data_dir / "admin"
    store_dir.mkdir(parents=True, exist_ok=True)
    services = watched_services(config)
    #: opened once the server has forked its processes (a SQLite connection and a thread do
    #: not survive a fork), see below
    store: MetricsStore | None = None
    history: MetricsHistory | None = None
    metrics = ServiceMetrics(SERVICE_NAME)
    settings = Settings()
    #: the tenants' models, shared by the sessions of this process
    models = ModelCache()

    def app() -> Any:
        try:
            return page()
        except Exception as exc:  # logged with its traceback; the browser sees what failed
            log.exception("admin panel session failed")
            return pn.pane.Alert(f"The Admin Panel could not open: {exc}", alert_type="danger")

    def page() -> Any:
        start = time.perf_counter()
        fixed = config.session_token is not None
        api = AdminApi(
            identity_url=config.identity_url,
            api_url=config.api_url,
            token=config.session_token if fixed else pn.state.access_token,
            services=services,
            controller_url=config.controller_url,
            bots_url=config.bots_url,
            models=models,
        )
        pn.state.on_session_destroyed(lambda _ctx: api.close())
        # ``?page=Data`` opens that page first (when the user's roles offer it)
        raw = (pn.state.session_args.get("page") or [b""])[0]
        wanted = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        shell = AdminShell(
            api=api,
            store=store,
            history=history,
            settings=settings,
            tenant_ids=list(config.session_tenants) if fixed else None,
            role_names=list(config.session_roles) if fixed else None,
            start_page=wanted or None,
        )
        metrics.observe("GET", "/", 200, time.perf_counter() - start)
        return admin_page(shell)

    tls: dict[str, str] = {}
    if ssl_certfile is not None and ssl_keyfile is not None:
        tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)}
    public = config.public_url.rstrip("/")
    common: dict[str, Any] = {
        "port": port,
        "address": host,
        "show": False,
        "start": False,
        "title": "Mesh Workbench Admin Panel",
        "websocket_origin": [public.split("://", 1)[1], f"{host}:{port}", f"localhost:{port}"],
        "extra_patterns": _handlers(config, metrics),
        **tls,
    }
    if config.num_procs != 1:
        common["num_procs"] = config.num_procs
    if config.session_token is not None:  # benchmarks and tests: no login
        log.warning("admin panel without login: every session acts with the configured token")
        server = pn.serve({"/": app}, **common)
    else:
        server = _serve_with_login(config, app, common, cookie_secret, encryption_key)
    # from here on, in each forked process (or the one process)
    store = MetricsStore(store_dir / "metrics.db", retention_s=config.retention_s)
    if config.prometheus_url:
        history = PrometheusHistory(config.prometheus_url)
    else:
        history = StoreHistory(store)
    # with a Prometheus, it scrapes; the panel's own store stays empty
    if _first_process() and not config.prometheus_url:
        MetricsScraper(store, services, interval=config.scrape_interval).start()
    return server


def _first_process() -> bool:
    """Whether this is the only server process, or the first of the forked ones (which then
    also ends when the parent that forked it ends)."""
    from tornado.process import task_id

    task = task_id()
    if task is not None:
        _end_with_parent()
    return task in (None, 0)


def _end_with_parent() -> None:
    """A forked server process ends with its parent (Linux ``PR_SET_PDEATHSIG``): stopping
    ``workbench serve admin --num-procs N`` stops every process."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve_with_login(
    config: AdminConfig, app: Any, common: dict[str, Any], cookie_secret: str, encryption_key: str
) -> Any:
    """The server with the Identity login (OAuth authorization code with PKCE)."""
    import panel as pn

    identity_public = (config.identity_public_url or config.identity_url).rstrip("/")
    identity = config.identity_url.rstrip("/")
    public = config.public_url.rstrip("/")
    return pn.serve(
        {"/": app},
        **common,
        oauth_provider="auth_code",
        oauth_key=ADMIN_CLIENT,
        oauth_redirect_uri=f"{public}/login",
        oauth_extra_params={
            "AUTHORIZE_URL": f"{identity_public}/authorize",
            "TOKEN_URL": f"{identity}/token",
            "USER_URL": f"{identity}/userinfo",
            "LOGOUT_URL": f"{identity_public}/end-session",
            "USER_KEY": "preferred_username",
            "scope": LOGIN_SCOPES,
        },
        oauth_guest_endpoints=["/healthz", "/readyz", "/metrics"],
        cookie_secret=cookie_secret,
        oauth_encryption_key=encryption_key,
    )


def serve(
    config: AdminConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 5005,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the Admin Panel until interrupted."""
    server = build_server(
        config, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
    )
    log.info("admin panel ready", extra={"url": config.public_url})
    server.start()
    server.io_loop.start()
