"""A real headless Chromium for browser tests, with the network limited to loopback.

Tests drive Debian's ``/usr/bin/chromium`` through Playwright. :class:`LoopbackSession` routes
every request the page makes: requests to 127.0.0.1 go through, anything else is aborted and
recorded, so a page that needs the internet (a CDN script, a web font) fails its test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import pytest

from workbench.testing.servers import in_ci

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LoopbackSession", "chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Playwright ``Browser`` on Debian's Chromium (skips locally without it;
    fails under ``CI=true``)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        message = f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class LoopbackSession:
    """A browser context whose requests may only reach 127.0.0.1 (the others are aborted)."""

    def __init__(self, browser: Any, *, viewport: dict[str, int] | None = None) -> None:
        self.requested: list[str] = []
        self.console_errors: list[str] = []
        self.context = browser.new_context(viewport=viewport or {"width": 1400, "height": 1000})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )

    def _route(self, route: Any) -> None:
        self.requested.append(route.request.url)
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    def outside(self) -> list[str]:
        """The requests that tried to leave the host."""
        return [u for u in self.requested if urlparse(u).hostname != "127.0.0.1"]

    def close(self) -> None:
        """Close the context; fail if the page made no request or one left the host."""
        self.context.close()
        assert self.requested, "the pages made no requests at all"
        assert not self.outside(), self.outside()
