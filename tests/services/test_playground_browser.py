"""The playground in a real headless Chromium: GraphiQL renders, a query runs, and no request
leaves 127.0.0.1 (every request the page makes is recorded through route interception)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.services.conftest import ALL_TOKEN
from workbench.testing.browser import chromium
from workbench.testing.http import ServiceServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_playground_renders_runs_a_query_and_stays_on_the_host(
    server: ServiceServer, browser: object
) -> None:
    from playwright.sync_api import Browser, Route, expect

    assert isinstance(browser, Browser)
    requested: list[str] = []

    def record(route: Route) -> None:
        requested.append(route.request.url)
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context = browser.new_context()
    context.route("**/*", record)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server.url}/tenants/energy/graphql/playground")
    expect(page.locator(".graphiql-container")).to_be_visible(timeout=30_000)

    # put the token in the headers editor's storage and the query in the editor, then run it
    page.evaluate(
        """token => {
            localStorage.setItem('graphiql:headers',
                JSON.stringify({Authorization: 'Bearer ' + token}));
        }""",
        ALL_TOKEN,
    )
    page.reload()
    expect(page.locator(".graphiql-container")).to_be_visible(timeout=30_000)
    query = "{ runtime { rtDemoEnergySite { items { name } } } }"
    page.evaluate(
        """q => { document.querySelector('.graphiql-query-editor .CodeMirror')
                  .CodeMirror.setValue(q); }""",
        query,
    )
    with page.expect_response(
        lambda r: (
            r.url.endswith("/tenants/energy/graphql")
            and r.request.method == "POST"
            and "rtDemoEnergySite" in (r.request.post_data or "")
        )
    ) as info:
        page.locator(".graphiql-execute-button").click()
    assert info.value.status == 200
    expect(page.locator(".graphiql-response")).to_contain_text("Linz Plant", timeout=15_000)
    context.close()

    assert requested, "the page made no requests at all"
    hosts = {urlparse(url).hostname for url in requested}
    assert hosts == {"127.0.0.1"}, sorted(requested)
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
