"""The platform of the hub-and-bots tests (issue 15): Identity and Asset Repository (in this
process) and JupyterHub with the real configurable-http-proxy (:class:`HubStack`), plus
``workbench serve bot-service`` as a child process of its own, all on one data directory.

Tenant ``acme`` holds the demo model with three meters; ``alice`` (TenantOwners) and ``dana``
(Development, never logged in) are its users, ``operator`` a client the tests read the Bot
Service's history with. Users promote from a tenant kernel of their hub server (``%promote``,
which goes to the Bot Service the spawner names in ``WORKBENCH_BOT_SERVICE_URL``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from tests.bots.conftest import client_token
from tests.hub.conftest import ADMIN_PASSWORD, require_proxy
from workbench.hub.session import ExecutionResult, HubSession
from workbench.hub.stack import HubStack
from workbench.testing.http import free_port
from workbench.testing.smtp import Mailbox

__all__ = [
    "ADMIN_PASSWORD",
    "ALICE_PASSWORD",
    "DANA_PASSWORD",
    "TENANT",
    "TOTAL_KWH",
    "Platform",
    "login_and_spawn",
    "notebook",
    "running_platform",
    "save_and_promote",
    "wait_for",
]

PROJECT = Path(__file__).resolve().parents[2]

TENANT = "acme"
ALICE_PASSWORD = "alice-password-123"
DANA_PASSWORD = "dana-password-1234"
#: what the demo meters imported (set before the platform starts); the aggregate's sum
IMPORTED = {"meter-001": 120.25, "meter-002": 80.5}
THIRD_METER = 300.0
TOTAL_KWH = 500.75
HALL_A = "6560a1b2c3d4e5f607182931"  # the demo building the meters are in
#: a run on a loaded 2-core machine takes up to a minute (its kernel's start included)
RUN_DEADLINE_S = 240.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.3)


class BotServiceProcess:
    """``python -m workbench serve bot-service`` on a free loopback port, log in ``home``."""

    def __init__(self, home: Path, port: int, env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "WORKBENCH_HOME": str(home), "PYTHONUNBUFFERED": "1", **env}
        self.log_path = home / "bot-service.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 120.0) -> BotServiceProcess:
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "workbench", "serve", "bot-service"]
        command += ["--port", str(self.port), "--data-dir", str(self.home)]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the Bot Service exited:\n{self.log_tail()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, "the Bot Service to be ready", timeout)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "workbench.services.access" not in line]
        return "\n".join(kept[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Platform:
    stack: HubStack
    bots: BotServiceProcess
    mailbox: Mailbox
    operator_token: str

    def bot_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The Bot Service's REST API under ``/tenants/acme`` as the operator client."""
        return httpx.request(
            method,
            f"{self.bots.url}/tenants/{TENANT}{path}",
            headers={"Authorization": f"Bearer {self.operator_token}"},
            timeout=60,
            **kwargs,
        )

    def runs(self, bot: str) -> list[dict[str, Any]]:
        response = self.bot_api("GET", f"/bots/{bot}/runs")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def scheduled_runs_since(
        self, bot: str, moment: float, count: int = 1, *, timeout: float = RUN_DEADLINE_S
    ) -> list[dict[str, Any]]:
        """The first ``count`` finished scheduled runs of ``bot`` queued after ``moment`` (epoch
        seconds), oldest first; those still going and those skipped (a run was still going at
        their fire time) are not counted."""

        def finished() -> list[dict[str, Any]]:
            done = [
                r
                for r in self.runs(bot)
                if r["trigger"] == "schedule"
                and r["queued_at"] > moment
                and r["status"] not in ("queued", "running", "skipped")
            ]
            return done if len(done) >= count else []

        runs = wait_for(
            finished,
            f"{count} scheduled run(s) of {bot} queued after {moment:.1f}; the Bot Service's "
            f"log:\n{self.bots.log_tail()}",
            timeout,
        )
        return sorted(runs, key=lambda r: r["queued_at"])[:count]

    def html(self, bot: str, run: dict[str, Any]) -> str:
        response = self.bot_api("GET", f"/bots/{bot}/runs/{run['run_id']}/html")
        assert response.status_code == 200, response.text
        assert "text/html" in response.headers["content-type"]
        return response.text

    def assert_succeeded_with_html(self, bot: str, runs: list[dict[str, Any]], text: str) -> None:
        """Each run succeeded, and its rendered notebook shows ``text`` (what the run printed)."""
        for run in runs:
            assert run["status"] == "succeeded", run
            page = self.html(bot, run)
            assert "<html" in page.lower()
            assert text in page


def _prepare(workbench: Any, directory: Any) -> None:
    from workbench.demo import build_demo_tenant

    build_demo_tenant(workbench, TENANT, with_streams=False)
    entities = workbench.tenant(TENANT).entities
    for name, kwh in IMPORTED.items():
        entities.update(entities.get_by_well_known_name(name).rt_id, {"energyImported": kwh})
    entities.create(
        "Demo.Energy/EnergyMeter",
        {"name": "Meter-003", "serialNumber": "EM-0003", "state": "Active"}
        | {"energyImported": THIRD_METER},
        associations=[("System/ParentChild", HALL_A)],
    )
    directory.ensure_builtin_groups(TENANT)
    directory.create_user(TENANT, "alice", password=ALICE_PASSWORD, groups=["TenantOwners"])
    # a new user who has never logged in: a developer of the tenant
    directory.create_user(TENANT, "dana", password=DANA_PASSWORD, roles=["Development"])
    directory.create_client(
        TENANT,
        "operator",
        grant_types=["client_credentials"],
        scopes=["workbench_api"],
        roles=["Development"],
    )


@contextmanager
def running_platform(home: Path) -> Iterator[Platform]:
    """The platform on ``home`` (see the module docstring), stopped at the end."""
    require_proxy()
    bots_port = free_port()
    mailbox = Mailbox()
    mailbox.controller.start()
    stack = HubStack(home, admin_password=ADMIN_PASSWORD, prepare=_prepare)
    bots: BotServiceProcess | None = None
    try:
        with_checkout = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
        with _environment(
            # the hub's settings: its spawner hands the URL to the servers (%promote goes there)
            WORKBENCH_BOT_SERVICE_URL=f"http://127.0.0.1:{bots_port}",
            # servers and kernels import this checkout's workbench package (the spawner keeps
            # PYTHONPATH), whichever checkout the kernel environment was installed from
            PYTHONPATH=with_checkout,
        ):
            stack.start()
        bots = BotServiceProcess(
            home,
            bots_port,
            {
                "WORKBENCH_IDENTITY_ISSUER": stack.identity_url,
                "WORKBENCH_BOT_API_URL": stack.api_url,
                "WORKBENCH_BOT_SMTP_URL": mailbox.url,
                "WORKBENCH_BOT_TICK_S": "0.1",
            },
        ).start()
        secret = stack.directory.rotate_client_secret("operator")
        token = client_token(stack.identity_url, "operator", str(secret))
        yield Platform(stack, bots, mailbox, token)
    finally:
        if bots is not None:
            bots.stop()
        stack.stop()
        mailbox.controller.stop()


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield


def notebook(cells: list[str], parameters: str, **bot: Any) -> dict[str, Any]:
    """An nbformat 4 notebook: a cell tagged ``parameters``, then ``cells``; ``bot`` becomes its
    ``metadata.workbench.bot`` (the bot's settings)."""

    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "id": uuid.uuid4().hex[:8],
            "metadata": {"tags": tags} if tags else {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    metadata: dict[str, Any] = {
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Py"}
    }
    if bot:
        metadata["workbench"] = {"bot": bot}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": metadata,
        "cells": [cell(parameters, ["parameters"]), *(cell(source) for source in cells)],
    }


def save_and_promote(
    session: HubSession, path: str, content: dict[str, Any], line: str
) -> ExecutionResult:
    """Save ``content`` as ``path`` in the user's server (the contents API, as JupyterLab does)
    and run ``%promote LINE path`` in a fresh tenant kernel of that server."""
    saved = session.server_api(
        "PUT", f"/contents/{path}", json={"type": "notebook", "format": "json", "content": content}
    )
    assert saved.status_code in (200, 201), saved.text
    kernel = session.start_kernel()
    result = session.execute(kernel, f"%promote {line} {path}", timeout=180)
    assert result.status == "ok", f"{result.error}\n{result.stdout}"
    return result


def login_and_spawn(stack: HubStack, username: str, password: str) -> HubSession:
    """``username`` of ``acme`` logged in to the hub, with a running server."""
    session = HubSession(stack.hub_url)
    session.login(TENANT, username, password)
    if session.server_model() is None:
        session.spawn(TENANT, timeout=180)
    return session
