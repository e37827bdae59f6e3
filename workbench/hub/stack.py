"""The notebook platform on loopback ports for tests and benchmarks.

:class:`HubStack` runs the Identity service and the Asset Repository (JWT-verifying) in this
process on free ports, and JupyterHub (``workbench serve hub``, with the real
configurable-http-proxy) as a child process, all on one data directory::

    with HubStack(home) as stack:              # doctest: +SKIP
        HubSession(stack.hub_url).login("acme", "alice", "...")
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["HubProcess", "HubStack"]

ADMIN_PASSWORD_ENV = "WORKBENCH_ADMIN_PASSWORD"


class _DeferredApp:
    """An ASGI app set after the server's port (and so the issuer URL) is known."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class HubProcess:
    """``python -m workbench serve hub`` on free loopback ports; output to ``log_path``."""

    def __init__(
        self,
        home: Path,
        *,
        identity_url: str,
        api_url: str,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from workbench.testing.http import free_port

        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WORKBENCH_HOME": str(home),
            "WORKBENCH_IDENTITY_ISSUER": identity_url,
            "WORKBENCH_API_URL": api_url,
            "WORKBENCH_HUB_API_PORT": str(free_port()),
            "WORKBENCH_HUB_PROXY_API_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> HubProcess:
        import httpx

        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "hub", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                self.stop()  # closes the log file
                raise RuntimeError(f"the hub exited with status {status}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/hub/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the hub did not become healthy:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the hub stops its servers and the proxy
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class HubStack:
    """Identity + Asset Repository (in process) + JupyterHub (child process) on ``home``.

    ``prepare(workbench, directory)`` runs before the services start (tenants, users).
    The bootstrap admin (``admin`` in ``system``) gets ``admin_password``. As root, the
    working directories live in a temporary directory outside ``home`` (the per-user accounts
    must reach them; the data directory is the platform's only), removed by :meth:`stop` with
    the accounts the hub created.
    """

    def __init__(self, home: Path, *, admin_password: str, prepare: Any = None) -> None:
        self.home = home
        self.admin_password = admin_password
        self.prepare = prepare
        self._servers: list[Any] = []
        self.hub: HubProcess | None = None
        self.workbench: Any = None
        self.directory: Any = None
        self.work_root: Path | None = None

    def start(self) -> HubStack:
        from pydantic import SecretStr

        from workbench.client.local import open_workbench
        from workbench.hub.provisioning import register_hub_client
        from workbench.services.asset_repository import app as asset_repository
        from workbench.services.auth import JwtAuthenticator
        from workbench.services.identity import app as identity
        from workbench.settings import Settings
        from workbench.testing.http import ServiceServer

        self.home.mkdir(parents=True, exist_ok=True)
        self.workbench = open_workbench(self.home)
        idp_app = _DeferredApp()
        idp = ServiceServer(idp_app)
        self.identity_url = idp.url
        settings = Settings(
            home=self.home,
            identity_issuer=idp.url,
            admin_password=SecretStr(self.admin_password),
        )
        idp_app.app = identity.create_app(settings, workbench=self.workbench, announce=False)
        self.directory = idp_app.app.state.service.directory
        if self.prepare is not None:
            self.prepare(self.workbench, self.directory)
        self._servers.append(idp.start())
        api = ServiceServer(
            asset_repository.create_app(
                settings,
                workbench=self.workbench,
                auth=JwtAuthenticator.from_settings(settings),
            )
        )
        self._servers.append(api.start())
        self.api_url = api.url
        self.hub = HubProcess(
            self.home,
            identity_url=idp.url,
            api_url=api.url,
            log_path=self.home / "hub.log",
        )
        if os.geteuid() == 0:
            self.work_root = Path(tempfile.mkdtemp(prefix="workbench-hub-work-"))
            self.hub.env["WORKBENCH_HUB_WORK_ROOT"] = str(self.work_root)
        register_hub_client(self.directory, self.home, self.hub.url)
        self.hub.start()
        self.hub_url = self.hub.url
        return self

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop()
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        if self.workbench is not None:
            self.workbench.close()
            self.workbench = None
        if self.work_root is not None:
            from workbench.hub.accounts import accounts_of, remove_account

            shutil.rmtree(self.work_root, ignore_errors=True)
            self.work_root = None
            for account in accounts_of(str(self.home.resolve())):
                remove_account(account)

    def __enter__(self) -> HubStack:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
