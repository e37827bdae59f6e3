"""``workbench up``: the platform on one machine as one supervised process tree.

Each service runs as a child process (``python -m workbench serve NAME``) so a crash in one is
reported clearly and Ctrl-C stops them all. Child output is prefixed with the service name.
The first start builds the demo tenant and an API token kept in the data directory.
"""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from workbench.errors import BackendUnavailable
from workbench.secret_files import read_or_create_secret
from workbench.services.tls import TlsFiles, client_context

__all__ = ["SERVICES", "ServiceSpec", "Supervisor", "api_token", "http_ok"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    default_port: int
    #: printed once the service is healthy: (label, path)
    links: tuple[tuple[str, str], ...] = ()
    #: answers 200 once the service is up
    health_path: str = "/healthz"
    #: when it fails to start, the others run on and this is printed
    optional_hint: str | None = None
    #: env variable naming a port that answers ``health_path`` before the public one does (the
    #: hub's own port: its proxy logs a 404 error for each probe until the hub's route exists)
    inner_port_env: str | None = None


#: in start order: the Asset Repository verifies tokens against the Identity service's JWKS
SERVICES: dict[str, ServiceSpec] = {
    "identity": ServiceSpec(
        "identity", 5003, (("OpenID configuration", "/.well-known/openid-configuration"),)
    ),
    "asset-repository": ServiceSpec(
        "asset-repository",
        5001,
        (
            ("playground", "/tenants/{tenant}/graphql/playground"),
            ("GraphQL", "/tenants/{tenant}/graphql"),
        ),
    ),
    # Panel dashboards; signs users in through Identity, acts through the Asset Repository
    "admin": ServiceSpec("admin", 5005, (("Admin Panel", "/"),)),
    # adapters register here, get their pipelines, report heartbeats and executions
    "communication-controller": ServiceSpec(
        "communication-controller", 5015, (("adapters API", "/docs"),)
    ),
    # scheduled notebook bots; runs reach the Asset Repository with tokens from Identity
    "bot-service": ServiceSpec("bot-service", 5009, (("bots", "/docs"),)),
    # JupyterHub behind configurable-http-proxy: the proxy's port, the hub's health route
    "hub": ServiceSpec(
        "hub",
        8000,
        (("notebooks", "/hub/"),),
        health_path="/hub/health",
        inner_port_env="WORKBENCH_HUB_API_PORT",
        optional_hint="to get the hub: install Node.js and npm, run `make hub-proxy` (or "
        "`npm install -g configurable-http-proxy`), then start again",
    ),
}


def api_token(home: Path) -> str:
    """The data directory's development API token for the Asset Repository (created once)."""
    return read_or_create_secret(home / "secrets" / "api-token", lambda: secrets.token_urlsafe(32))


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the supervisor dies, so no
    service outlives a supervisor that was killed (not just interrupted)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


#: JupyterHub's warning about plain HTTP, dropped from the output when every service binds to
#: loopback (nothing leaves the machine; a --host other than loopback keeps it)
_LOOPBACK_NOISE = "Running JupyterHub without SSL"


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when ``url`` answers 200 (``context`` verifies an https URL)."""
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class _Child:
    spec: ServiceSpec
    port: int
    process: subprocess.Popen[str]
    pump: threading.Thread = field(init=False)


class Supervisor:
    """Start services, wait until healthy, relay their output, stop them together."""

    def __init__(
        self,
        home: Path,
        host: str,
        services: Sequence[str],
        *,
        ports: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
        say: Callable[[str], None] = print,
        tls: TlsFiles | None = None,
        trust: Path | None = None,
    ) -> None:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise BackendUnavailable(
                f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}"
            )
        self.home = home
        self.host = host
        self.services = list(services)
        self.ports = {s: (ports or {}).get(s, SERVICES[s].default_port) for s in self.services}
        self.env = env or {}
        self.say = say
        #: services are served over https with these files; ``trust`` verifies them
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self._context = client_context(trust) if tls else None
        self._trust = trust
        self.children: list[_Child] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def url(self, service: str) -> str:
        return f"{self.scheme}://{self.host}:{self.ports[service]}"

    def reachable_url(self, service: str) -> str:
        """:meth:`url` with a wildcard host replaced by loopback (what clients connect to)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "[::]": "127.0.0.1"}.get(
            self.host, self.host
        )
        return f"{self.scheme}://{host}:{self.ports[service]}"

    @property
    def running(self) -> list[str]:
        """The services started (an optional one that failed to start is left out)."""
        return [c.spec.name for c in self.children]

    def start(self, timeout: float = 60.0) -> None:
        """Start every service and wait for its health route; raise if one fails to come up."""
        # every child is forked before any relay thread starts (preexec_fn and threads don't mix)
        for name in self.services:
            self._spawn(SERVICES[name])
        for child in self.children:
            child.pump.start()
        deadline = time.monotonic() + timeout
        for child in list(self.children):
            while not self._healthy(child):
                if child.process.poll() is not None:
                    if child.spec.optional_hint is not None:
                        self._give_up(child)
                        break
                    self.stop()
                    raise BackendUnavailable(
                        f"service {child.spec.name} exited with status {child.process.returncode} "
                        "while starting; its output is above"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise BackendUnavailable(
                        f"service {child.spec.name} did not become healthy on "
                        f"{self.url(child.spec.name)}{child.spec.health_path} within "
                        f"{timeout:.0f} s"
                    )
                time.sleep(0.2)

    def _give_up(self, child: _Child) -> None:
        """An optional service failed to start: say so and how to get it; the rest run on."""
        child.pump.join(timeout=2)
        self.children.remove(child)
        self.say(
            f"{child.spec.name}: not started (it exited with status {child.process.returncode}; "
            f"its output is above); the other services run on. {child.spec.optional_hint}"
        )

    def _spawn(self, spec: ServiceSpec) -> None:
        port = self.ports[spec.name]
        command = [
            sys.executable,
            "-m",
            "workbench",
            "serve",
            spec.name,
            "--host",
            self.host,
            "--port",
            str(port),
            "--data-dir",
            str(self.home),
        ]
        if self.tls is not None:
            command += ["--cert", str(self.tls.cert), "--key", str(self.tls.key)]
        env = {
            **os.environ,
            **self.env,
            "PYTHONUNBUFFERED": "1",
            # every service finds the others (token issuer, JWKS) at the addresses used here
            "WORKBENCH_SERVICE_HOST": self.host,
            **{
                f"WORKBENCH_{name.upper().replace('-', '_')}_PORT": str(port)
                for name, port in self.ports.items()
            },
        }
        if self.tls is not None:
            env.update(self._tls_env(env))
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no thread runs yet, see start()
        )
        child = _Child(spec, port, process)
        child.pump = threading.Thread(
            target=self._relay, args=(spec.name, process.stdout), daemon=True
        )
        self.children.append(child)

    def _tls_env(self, env: dict[str, str]) -> dict[str, str]:
        """Over https: the issuer's scheme, and a CA bundle trusting the certificate in use."""
        extra = {}
        if "identity" in self.ports and not env.get("WORKBENCH_IDENTITY_ISSUER"):
            extra["WORKBENCH_IDENTITY_ISSUER"] = self.reachable_url("identity")
        if self._trust is not None:
            extra["SSL_CERT_FILE"] = str(self._trust)
        return extra

    def _relay(self, name: str, stream: IO[str] | None) -> None:
        if stream is None:
            return
        width = max(len(s) for s in self.services)
        loopback = self.host in ("127.0.0.1", "localhost", "::1")
        for line in stream:
            if loopback and _LOOPBACK_NOISE in line:
                continue  # plain HTTP is what a loopback-only platform serves
            self.say(f"{name:<{width}} | {line.rstrip()}")

    def _healthy(self, child: _Child) -> bool:
        spec = child.spec
        inner = (self.env.get(spec.inner_port_env) or "") if spec.inner_port_env else ""
        if inner.isdigit() and not http_ok(f"http://127.0.0.1:{inner}{spec.health_path}"):
            return False
        return http_ok(f"{self.reachable_url(spec.name)}{spec.health_path}", self._context)

    def wait(self) -> int:
        """Block until a service exits (reported, everything stopped) or ``stop()`` is called."""
        while not self._stopping.is_set():
            for child in self.children:
                code = child.process.poll()
                if code is not None and not self._stopping.is_set():
                    self.say(
                        f"service {child.spec.name} exited unexpectedly with status {code}; "
                        "stopping the others"
                    )
                    self.stop()
                    return code or 1
            self._stopping.wait(0.5)
        return 0

    def stop(self, grace: float = 10.0) -> None:
        """Terminate every child (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        with self._lock:
            if self._stopping.is_set() and all(c.process.poll() is not None for c in self.children):
                return
            self._stopping.set()
            for child in reversed(self.children):
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for child in self.children:
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    child.process.wait(remaining)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            for child in self.children:
                child.pump.join(timeout=2)
