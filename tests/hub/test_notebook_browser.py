"""Issue 9 part 2: the tutorial notebooks' plots draw in a real browser with no network but
loopback.

A tenant user logs in to the real hub, opens each tutorial notebook in JupyterLab in Debian's
headless Chromium and runs all cells in the tenant kernel. Every request the page makes is
routed through the test (``workbench.testing.browser.LoopbackSession``): one to anything but
127.0.0.1 is refused and fails the test. Every plot's output area must show data: coloured
pixels (the curves, spikes), not only the white background, grey axes and black text. Then the
notebook is saved and the page reloaded with the kernel still running: the plots draw again.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub.conftest import ALICE_PASSWORD
from workbench.hub.session import HubSession
from workbench.hub.stack import HubStack
from workbench.testing.browser import LoopbackSession, chromium

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
#: a plot's output area shows data when at least this many pixels are clearly coloured
MIN_COLOURED_PIXELS = 150


#: how many plots each tutorial draws (a new tutorial must be added here)
PLOTS = {
    "01-construction-kit.ipynb": 0,
    "02-runtime-entities.ipynb": 0,
    "03-stream-data.ipynb": 4,  # a read, an aggregate, stream_plot * HLine, Spikes overlay
    "04-graphql.ipynb": 0,
}


def test_every_tutorial_has_its_plot_count() -> None:
    assert sorted(PLOTS) == [p.name for p in TUTORIALS]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def coloured_pixels(png: bytes) -> int:
    """Pixels whose channels differ by more than 80 (data colours; not white, grey or black)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 80).sum())


class Lab:
    """JupyterLab in one browser page, driven the way a user would."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        self.accept_kernel_dialog()
        self.wait_idle()

    def accept_kernel_dialog(self) -> None:
        dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
        try:
            dialog.wait_for(timeout=3_000)
        except Exception:  # no dialog: the tenant kernel is the default
            return
        self.dialogs.append(self.page.locator(".jp-Dialog").first.inner_text())
        dialog.click()

    def wait_idle(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            prompts = self.page.evaluate(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                ".map(p => p.textContent)"
            )
            status = self.page.evaluate(
                "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                "?.getAttribute('data-status') ?? ''"
            )
            if prompts and not any("*" in p for p in prompts) and status in ("idle", ""):
                return
            time.sleep(0.5)
        raise AssertionError(f"the notebook did not finish: prompts {prompts}, status {status}")

    def prompts(self) -> list[str]:
        return list(
            self.page.evaluate(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                ".map(p => p.textContent)"
            )
        )

    def run_all(self, attempts: int = 3) -> None:
        """Run > Run All Cells (again if the kernel was not ready to take it), then wait."""
        for _ in range(attempts):
            self.accept_kernel_dialog()
            self.page.get_by_role("menuitem", name="Run", exact=True).click()
            self.page.get_by_text("Run All Cells", exact=True).click()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(any(ch.isdigit() or ch == "*" for ch in p) for p in self.prompts()):
                    self.wait_idle(timeout=240)
                    return
                time.sleep(0.5)
            self.page.keyboard.press("Escape")
        raise AssertionError(f"Run All Cells did not start: prompts {self.prompts()}")

    def errors(self) -> list[str]:
        return list(
            self.page.evaluate(
                "() => [...document.querySelectorAll("
                "'[data-mime-type=\"application/vnd.jupyter.error\"]')].map(e => e.textContent)"
            )
        )

    def describe(self) -> str:
        """The outputs' MIME types and prompts (for failure messages)."""
        return str(
            self.page.evaluate(
                "() => [...document.querySelectorAll('.jp-Cell')].map(c => ["
                "c.querySelector('.jp-InputPrompt')?.textContent, "
                "[...c.querySelectorAll('.jp-OutputArea-output')]"
                ".map(o => o.getAttribute('data-mime-type'))])"
            )
        )

    def plots(self) -> Any:
        """The output areas showing a Bokeh canvas (Playwright's locators see into the shadow
        roots Bokeh renders into)."""
        return self.page.locator(".jp-OutputArea-output").filter(has=self.page.locator("canvas"))

    def wait_plots(self, expected: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while True:
            found = int(self.plots().count())
            if found >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def plot_pixels(self, index: int, timeout: float = 30) -> int:
        """Coloured pixels in the ``index``-th plot output once a canvas shows there."""
        output = self.plots().nth(index)
        deadline = time.monotonic() + timeout
        best = 0
        while time.monotonic() < deadline:
            output.scroll_into_view_if_needed()
            if output.locator("canvas").count():
                best = max(best, coloured_pixels(output.screenshot()))
                if best >= MIN_COLOURED_PIXELS:
                    return best
            time.sleep(0.5)
        return best

    def save(self, session: HubSession, name: str, timeout: float = 180) -> None:
        """The notebook toolbar's save button (again after a while) until the server's copy
        holds the outputs of the run (several MB: the plotting loader is inline)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.accept_kernel_dialog()
            self.page.locator(
                ".jp-NotebookPanel-toolbar [data-command='docmanager:save']"
            ).first.click()
            for _ in range(30):
                book = session.server_api("GET", f"/contents/{name}").json()["content"]
                if any(c.get("outputs") for c in book["cells"] if c["cell_type"] == "code"):
                    return
                time.sleep(1)
        raise AssertionError(f"{name} was not saved with its outputs (dialogs: {self.dialogs})")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_plots_draw_offline_and_after_a_reload(
    stack: HubStack, browser: Any, path: Path
) -> None:
    expected = PLOTS[path.name]
    with HubSession(stack.hub_url) as session:
        session.login("acme", "alice", ALICE_PASSWORD)
        if session.server_model() is None:
            session.spawn("acme")
        loopback = LoopbackSession(browser)
        loopback.context.add_cookies(
            [
                {
                    "name": cookie.name,
                    "value": cookie.value or "",
                    "domain": "127.0.0.1",
                    "path": cookie.path or "/",
                }
                for cookie in session.http.cookies.jar
            ]
        )
        page = loopback.page
        lab = Lab(page)
        user = session.user or ""
        # ?reset: a fresh workspace, only this notebook open (not the previous tests' tabs)
        url = f"{stack.hub_url}/user/{user}/lab/tree/{path.name}?reset"
        try:
            lab.open(url)
            lab.run_all()
            assert lab.errors() == []
            assert lab.wait_plots(expected) == expected, lab.describe()
            drawn = [lab.plot_pixels(i) for i in range(expected)]
            assert all(n >= MIN_COLOURED_PIXELS for n in drawn), drawn
            lab.save(session, path.name)
            page.reload()
            lab.open(url)
            saved = session.server_api("GET", f"/contents/{path.name}").json()["content"]
            assert lab.wait_plots(expected) == expected, (
                lab.describe(),
                lab.dialogs,
                [len(c.get("outputs", [])) for c in saved["cells"]],
            )
            redrawn = [lab.plot_pixels(i) for i in range(expected)]
            assert all(n >= MIN_COLOURED_PIXELS for n in redrawn), redrawn
        finally:
            loopback.close()  # fails if a request tried to leave the host
        print(
            f"{path.name}: {len(loopback.requested)} requests, all to 127.0.0.1; coloured "
            "pixels per plot "
            f"{drawn}, after the reload {redrawn}"
        )
