"""``workbench up`` with Identity, the Asset Repository and the Admin Panel on free loopback
ports, a one-day demo tenant, and a platform admin with a known password."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.testing.browser import LoopbackSession, chromium
from workbench.testing.http import free_port
from workbench.testing.up import read_until_up

ADMIN_PASSWORD = "admin-panel-Pa55word"


@dataclass(frozen=True)
class Platform:
    home: Path
    identity: str
    assets: str
    admin: str
    demo_password: str


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    pytest.importorskip("panel")
    home = tmp_path_factory.mktemp("admin-platform")
    ports = {
        "identity": free_port(),
        "asset-repository": free_port(),
        "communication-controller": free_port(),
        "admin": free_port(),
    }
    command = [sys.executable, "-m", "workbench", "up", "--data-dir", str(home), "--demo-days", "1"]
    for name, port in ports.items():
        command += ["--service", name, "--port", f"{name}={port}"]
    env = {
        **os.environ,
        "WORKBENCH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WORKBENCH_ADMIN_SCRAPE_INTERVAL": "1",
    }
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    drain: threading.Thread | None = None
    try:
        output = read_until_up(process, timeout=240)
        assert "Mesh Workbench is up" in output, output
        found = re.search(r"demo login: demo / (\S+)", output)
        assert found, output
        assert process.stdout is not None

        def relay(stream: Any = process.stdout) -> None:
            with (home / "up.log").open("w") as log:  # the services' output, for debugging
                for line in stream:
                    log.write(line)
                    log.flush()

        drain = threading.Thread(target=relay, daemon=True)
        drain.start()
        yield Platform(
            home,
            f"http://127.0.0.1:{ports['identity']}",
            f"http://127.0.0.1:{ports['asset-repository']}",
            f"http://127.0.0.1:{ports['admin']}",
            found.group(1),
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class AdminSession(LoopbackSession):
    """A loopback-only browser session signed in to the Admin Panel."""

    def sign_in(self, platform: Platform, tenant: str, username: str, password: str) -> None:
        page = self.page
        page.goto(f"{platform.admin}/")
        page.wait_for_url(f"{platform.identity}/login?**", timeout=60_000)
        page.fill("#tenant", tenant)
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        try:
            page.wait_for_url(f"{platform.admin}/**", timeout=60_000)
            page.get_by_text(f"Signed in as {username}").wait_for(timeout=60_000)
        except Exception as exc:
            raise AssertionError(
                f"sign-in of {username}@{tenant} did not reach the panel: {page.url}\n"
                f"{page.inner_text('body')[:2000]}"
            ) from exc

    def tab(self, name: str) -> None:
        self.page.locator(".bk-tab", has_text=name).first.click()

    def open_card(self, title: str) -> None:
        """Open the card with this title by its toggle button (its content is built then)."""
        self.page.locator(".wb-cards .bk-btn", has_text=title).first.click()

    def screenshot(self, name: str) -> None:
        """With ``WORKBENCH_ADMIN_SCREENSHOTS=DIR``, the page as ``DIR/NAME.png`` (how the
        screenshots in docs/images are made: ``WORKBENCH_ADMIN_SCREENSHOTS=docs/images``)."""
        folder = os.environ.get("WORKBENCH_ADMIN_SCREENSHOTS")
        if folder:
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def session(browser: Any) -> Iterator[AdminSession]:
    opened = AdminSession(browser)
    yield opened
    opened.close()
