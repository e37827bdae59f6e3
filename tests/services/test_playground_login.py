"""The playground logs in through the Identity service (authorization code + PKCE) and queries
with the resulting token, in a real headless Chromium against ``workbench up`` (what ``make run``
starts): redirect to the login form, back to the playground, the sample query, token refresh,
logout; a user of another tenant is refused; no request leaves 127.0.0.1.

The explicit development modes (``--no-auth``, ``--dev-static-token``) need no login.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

import workbench
from tests.services.conftest import build_tenants
from workbench.services import create_app
from workbench.testing.browser import LoopbackSession, chromium
from workbench.testing.http import ServiceServer, free_port
from workbench.testing.up import read_until_up

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SAMPLE_QUERY = "{ runtime { rtDemoEnergyEnergyMeter(first: 10) { items { rtId name } } } }"
OTHER_TENANT = "acme"
OTHER_USER = "alice"
OTHER_PASSWORD = "alice-playground-Pa55"
TOKENS_KEY = "workbench.playground.tokens."


@dataclass(frozen=True)
class Platform:
    home: Path
    identity: str
    assets: str
    demo_password: str

    def playground(self, tenant: str) -> str:
        return f"{self.assets}/tenants/{tenant}/graphql/playground"


def _prepare_other_tenant(home: Path) -> None:
    """A second tenant with a user of its own (who may not use the demo tenant)."""
    from workbench.identity.directory import Directory
    from workbench.identity.model import TENANT_OWNERS

    with workbench.open(home) as wb:
        wb.tenants.create(OTHER_TENANT)
        directory = Directory.for_workbench(wb)
        directory.ensure_builtin_groups(OTHER_TENANT)
        directory.create_user(
            OTHER_TENANT, OTHER_USER, password=OTHER_PASSWORD, groups=[TENANT_OWNERS]
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``workbench up`` with Identity and the Asset Repository on free loopback ports."""
    home = tmp_path_factory.mktemp("platform")
    _prepare_other_tenant(home)
    identity_port, assets_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--data-dir", str(home),
        "--port", f"identity={identity_port}", "--port", f"asset-repository={assets_port}",
        "--service", "identity", "--service", "asset-repository", "--demo-days", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    drain: threading.Thread | None = None
    try:
        output = read_until_up(process)
        found = re.search(r"demo login: demo / (\S+)", output)
        assert "Mesh Workbench is up" in output, output
        assert found, output
        # keep draining the services' output so they never block on a full pipe
        assert process.stdout is not None
        stdout = process.stdout
        drain = threading.Thread(target=stdout.read, daemon=True)
        drain.start()
        yield Platform(
            home,
            f"http://127.0.0.1:{identity_port}",
            f"http://127.0.0.1:{assets_port}",
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Session(LoopbackSession):
    """A browser context that records every request and aborts any leaving 127.0.0.1."""

    def close(self) -> None:
        super().close()
        csp = [e for e in self.console_errors if "Content Security Policy" in e]
        assert not csp, csp

    def log_in(self, platform: Platform, tenant: str, username: str, password: str) -> None:
        """Fill Identity's login form (the page must be on it)."""
        page = self.page
        page.wait_for_url(f"{platform.identity}/login?**", timeout=30_000)
        page.fill("#tenant", tenant)
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")

    def run_query(self, tenant: str, query: str) -> Any:
        """Put ``query`` in the editor, run it; the (first) GraphQL response."""
        page = self.page
        page.evaluate(
            """q => { document.querySelector('.graphiql-query-editor .CodeMirror')
                      .CodeMirror.setValue(q); }""",
            query,
        )
        with page.expect_response(
            lambda r: (
                r.url.endswith(f"/tenants/{tenant}/graphql")
                and r.request.method == "POST"
                and "IntrospectionQuery" not in (r.request.post_data or "")
            ),
            timeout=30_000,
        ) as info:
            page.locator(".graphiql-execute-button").click()
        return info.value

    def tokens(self, tenant: str) -> dict[str, Any]:
        stored: dict[str, Any] | None = self.page.evaluate(
            "key => JSON.parse(sessionStorage.getItem(key))", TOKENS_KEY + tenant
        )
        assert stored is not None, f"no tokens for {tenant} in sessionStorage"
        return stored


@pytest.fixture
def session(browser: Any) -> Iterator[Session]:
    opened = Session(browser)
    try:
        yield opened
    finally:
        opened.close()


def test_login_query_refresh_and_logout(platform: Platform, session: Session) -> None:
    from playwright.sync_api import expect

    page = session.page
    playground = platform.playground("demo")
    page.goto(playground)

    # no token in this tab: straight to Identity's authorize endpoint, then its login form
    page.wait_for_url(f"{platform.identity}/login?**", timeout=30_000)
    next_url = parse_qs(urlparse(page.url).query)["next"][0]
    authorize = parse_qs(urlparse(next_url).query)
    assert authorize["client_id"] == ["workbench-playground"]
    assert authorize["redirect_uri"] == [f"{platform.assets}/playground/callback"]
    assert authorize["response_type"] == ["code"]
    assert authorize["code_challenge_method"] == ["S256"]
    assert len(authorize["code_challenge"][0]) == 43
    assert authorize["acr_values"] == ["tenant:demo"]
    assert set(authorize["scope"][0].split()) == {
        "openid",
        "profile",
        "workbench_api",
        "roles",
        "allowed_tenants",
    }
    assert authorize["state"][0]
    expect(page.locator("#tenant")).to_have_value("demo")

    with page.expect_response(lambda r: r.url.endswith("/playground/token")) as exchanged:
        session.log_in(platform, "demo", "demo", platform.demo_password)
    assert exchanged.value.status == 200
    page.wait_for_url(playground, timeout=30_000)
    expect(page.locator(".graphiql-container")).to_be_visible(timeout=30_000)
    expect(page.locator("#wb-user")).to_have_text("demo")
    expect(page.locator("#wb-auth-status")).to_contain_text("tenant demo")
    expect(page.locator("#wb-logout")).to_be_visible()
    first = session.tokens("demo")
    assert first["accessToken"].count(".") == 2
    assert first["refreshToken"]
    # tokens live in this tab's sessionStorage only, and the code is not left in the URL
    assert not [k for k in page.evaluate("Object.keys(localStorage)") if "playground" in k]
    assert "code=" not in page.url

    response = session.run_query("demo", SAMPLE_QUERY)
    assert response.status == 200
    assert response.request.headers["authorization"] == f"Bearer {first['accessToken']}"
    expect(page.locator(".graphiql-response")).to_contain_text("Meter-001", timeout=15_000)

    # the access token is about to expire: the page refreshes it (rotation) before querying
    page.evaluate(
        """key => { const t = JSON.parse(sessionStorage.getItem(key)); t.expiresAt = 0;
                    sessionStorage.setItem(key, JSON.stringify(t)); }""",
        TOKENS_KEY + "demo",
    )
    with page.expect_request(
        lambda r: r.url.endswith("/playground/token") and "refresh_token" in (r.post_data or "")
    ):
        response = session.run_query("demo", SAMPLE_QUERY.replace("first: 10", "first: 5"))
    assert response.status == 200
    second = session.tokens("demo")
    assert second["refreshToken"] != first["refreshToken"]
    assert response.request.headers["authorization"] == f"Bearer {second['accessToken']}"

    # the service refuses the token (401): the page refreshes once and retries
    page.evaluate(
        """key => { const t = JSON.parse(sessionStorage.getItem(key));
                    t.accessToken = 'not-a-jwt'; t.expiresAt = Date.now() + 600000;
                    sessionStorage.setItem(key, JSON.stringify(t)); }""",
        TOKENS_KEY + "demo",
    )
    statuses: list[int] = []

    def record(r: Any) -> None:
        # only this query's tries: GraphiQL may send others (schema introspection) meanwhile
        if r.url.endswith("/tenants/demo/graphql") and "first: 3" in (r.request.post_data or ""):
            statuses.append(r.status)

    page.on("response", record)
    session.run_query("demo", SAMPLE_QUERY.replace("first: 10", "first: 3"))
    expect(page.locator(".graphiql-response")).to_contain_text("Meter-001", timeout=15_000)
    page.wait_for_timeout(200)
    assert statuses[:2] == [401, 200], statuses

    # the refresh token is refused (revoked elsewhere): the page asks to log in again
    page.evaluate(
        """key => { const t = JSON.parse(sessionStorage.getItem(key));
                    t.expiresAt = 0; t.refreshToken = 'revoked-or-unknown';
                    sessionStorage.setItem(key, JSON.stringify(t)); }""",
        TOKENS_KEY + "demo",
    )
    page.evaluate(
        """q => document.querySelector('.graphiql-query-editor .CodeMirror')
                  .CodeMirror.setValue(q)""",
        "{ runtime { rtDemoEnergyEnergyMeter { items { name } } } }",
    )
    page.locator(".graphiql-execute-button").click()
    expect(page.locator("#wb-login")).to_be_visible(timeout=15_000)
    expect(page.locator("#wb-auth-status")).to_contain_text("Log in")
    assert page.evaluate("key => sessionStorage.getItem(key)", TOKENS_KEY + "demo") is None

    # log in again from the button (Identity still has a session: no form this time)
    with page.expect_response(lambda r: r.url.endswith("/playground/token")):
        page.click("#wb-login")
    page.wait_for_url(playground, timeout=30_000)
    expect(page.locator("#wb-user")).to_have_text("demo")
    third = session.tokens("demo")

    # log out: the refresh token is revoked, the tokens are gone, the Identity session ends
    with (
        page.expect_response(lambda r: r.url.endswith("/playground/revoke")) as revoked,
        page.expect_response(lambda r: "/end-session?" in r.url) as ended,
    ):
        page.click("#wb-logout")
    assert revoked.value.status == 200
    assert ended.value.status in (200, 302)
    page.wait_for_load_state()
    refused = httpx.post(
        f"{platform.identity}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": third["refreshToken"],
            "client_id": "workbench-playground",
        },
        timeout=30,
    )
    assert refused.status_code in (400, 401), refused.text
    page.goto(playground)
    expect(page.locator("#wb-login")).to_be_visible(timeout=15_000)
    expect(page.locator("#wb-auth-status")).to_contain_text("logged out")
    assert page.evaluate("key => sessionStorage.getItem(key)", TOKENS_KEY + "demo") is None
    page.click("#wb-login")
    # the Identity session is over: the login form again, not a silent login
    page.wait_for_url(f"{platform.identity}/login?**", timeout=30_000)


def test_a_user_of_another_tenant_is_refused(platform: Platform, session: Session) -> None:
    from playwright.sync_api import expect

    page = session.page
    # alice (tenant acme) tries the demo tenant's playground: Identity refuses the tenant
    page.goto(platform.playground("demo"))
    session.log_in(platform, OTHER_TENANT, OTHER_USER, OTHER_PASSWORD)
    page.wait_for_url(f"{platform.assets}/playground/callback**", timeout=30_000)
    expect(page.locator("#wb-callback-title")).to_have_text("Login failed", timeout=15_000)
    expect(page.locator("#wb-callback-message")).to_contain_text("access_denied")
    expect(page.locator("#wb-callback-message")).to_contain_text("may not use tenant 'demo'")
    expect(page.locator("#wb-callback-retry")).to_be_visible()
    assert "code=" not in page.url
    assert "state=" not in page.url

    # her own tenant's playground logs her in silently (Identity session) ...
    acme = platform.playground(OTHER_TENANT)
    page.goto(acme)
    page.wait_for_url(acme, timeout=30_000)
    expect(page.locator("#wb-user")).to_have_text(OTHER_USER, timeout=15_000)
    token = session.tokens(OTHER_TENANT)["accessToken"]

    # ... and her token is good for acme but gets 403 on the demo tenant's GraphQL
    query = {"query": SAMPLE_QUERY}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=platform.assets, headers=headers, timeout=30) as http:
        own = http.post(f"/tenants/{OTHER_TENANT}/graphql", json={"query": "{ __typename }"})
        assert own.status_code == 200, own.text
        demo = http.post("/tenants/demo/graphql", json=query)
        assert demo.status_code == 403, demo.text
    # also from the page itself: the demo tenant's endpoint refuses her token
    status = page.evaluate(
        """([url, token, body]) => fetch(url, {method: 'POST', body: JSON.stringify(body),
              headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + token}})
              .then(r => r.status)""",
        [f"{platform.assets}/tenants/demo/graphql", token, query],
    )
    assert status == 403


def test_token_forwarder_is_narrow(platform: Platform) -> None:
    with httpx.Client(base_url=platform.assets, timeout=30) as http:
        # a cross-site form post cannot drive it: JSON only
        form = http.post("/playground/token", data={"grant_type": "authorization_code"})
        assert form.status_code == 415
        assert form.json()["error"] == "invalid_request"
        other = http.post("/playground/token", json={"grant_type": "client_credentials"})
        assert other.status_code == 400
        assert other.json()["error"] == "unsupported_grant_type"
        missing = http.post("/playground/token", json={"grant_type": "authorization_code"})
        assert missing.status_code == 400
        # a made-up code is refused by Identity and relayed as such
        bad = http.post(
            "/playground/token",
            json={"grant_type": "authorization_code", "code": "nope", "code_verifier": "x" * 43},
        )
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_grant"
        assert bad.headers["cache-control"] == "no-store"
        # the page carries where Identity is, and the CSP stays same-origin
        page = http.get("/tenants/demo/graphql/playground")
        assert 'data-auth-mode="identity"' in page.text
        assert f'data-authorize-url="{platform.identity}/authorize"' in page.text
        assert f'data-redirect-uri="{platform.assets}/playground/callback"' in page.text
        assert "connect-src 'self'" in page.headers["content-security-policy"]


# ---------------------------------------------------------------- development modes


@pytest.fixture
def no_auth_server(tmp_path: Path) -> Iterator[ServiceServer]:
    with workbench.open(tmp_path / "wb") as wb:
        build_tenants(wb)
        with ServiceServer(create_app(workbench=wb, no_auth=True)) as running:
            yield running


def test_no_auth_mode_needs_no_login(no_auth_server: ServiceServer, session: Session) -> None:
    from playwright.sync_api import expect

    page = session.page
    playground = f"{no_auth_server.url}/tenants/energy/graphql/playground"
    page.goto(playground)
    expect(page.locator(".graphiql-container")).to_be_visible(timeout=30_000)
    assert page.url == playground
    assert page.locator("#wb-login").count() == 0
    response = session.run_query("energy", "{ runtime { rtDemoEnergySite { items { name } } } }")
    assert response.status == 200
    assert "authorization" not in response.request.headers
    expect(page.locator(".graphiql-response")).to_contain_text("Linz Plant", timeout=15_000)
    callback = httpx.get(f"{no_auth_server.url}/playground/callback", timeout=30)
    assert callback.status_code == 404
    token = httpx.post(
        f"{no_auth_server.url}/playground/token", json={"grant_type": "refresh_token"}, timeout=30
    )
    assert token.status_code == 404


def test_static_token_mode_shows_the_header_template(tmp_path: Path) -> None:
    from workbench.services import StaticTokenAuthenticator

    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create("energy")
        app = create_app(workbench=wb, auth=StaticTokenAuthenticator("dev-static-token-1"))
        with ServiceServer(app) as running:
            page = httpx.get(f"{running.url}/tenants/energy/graphql/playground", timeout=30)
    assert page.status_code == 200
    assert 'data-auth-mode="header"' in page.text
    assert "Bearer &lt;your API token&gt;" in page.text
    assert "data-authorize-url" not in page.text
