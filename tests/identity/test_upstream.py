"""Login through an external OpenID Connect provider: a second Identity instance acts as the
upstream; users are provisioned on first login and their roles come from the upstream's claims."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.identity.conftest import (
    REDIRECT_URI,
    Browser,
    IdentityInstance,
    form_value,
    pkce_pair,
    query_of,
    start_identity,
)
from workbench.errors import ValidationError
from workbench.identity.upstream import OidcSettings
from workbench.identity.verification import JwtVerifier, RemoteJwks

UPSTREAM_PASSWORD = "erin-password-123"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[IdentityInstance]:
    instance, _ = start_identity(
        tmp_path / "upstream", prepare=lambda wb: wb.tenants.create("corp")
    )
    instance.directory.create_user(
        "corp",
        "erin",
        password=UPSTREAM_PASSWORD,
        email="erin@corp.example",
        name="Erin",
        roles=["DataModelManagement", "ReportingViewer"],
    )
    try:
        yield instance
    finally:
        instance.server.stop()
        instance.workbench.close()


def _follow(http: httpx.Client, response: httpx.Response, base: str) -> httpx.Response:
    location = response.headers["location"]
    return http.get(location if location.startswith("http") else base + location)


def test_upstream_oidc_login_provisions_user(
    identity: IdentityInstance, upstream: IdentityInstance
) -> None:
    _, secret = upstream.directory.create_client(
        "corp",
        "workbench-login",
        redirect_uris=[f"{identity.url}/login/upstream-callback"],
        grant_types=["authorization_code"],
        first_party=True,
    )
    identity.directory.put_upstream(
        "demo",
        "corpidp",
        {
            "kind": "oidc",
            "preset": "generic",
            "issuer": upstream.url,
            "label": "Corp SSO",
            "clientId": "workbench-login",
            "clientSecret": secret,
            "scope": "openid profile email roles",
            "groupsClaim": "roles",
            "groupRoles": {"DataModelManagement": ["DataModelManagement", "Development"]},
        },
    )
    browser = Browser(identity.url)
    http = browser.http
    try:
        verifier, challenge = pkce_pair()
        first = http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": "notebook",
                "redirect_uri": REDIRECT_URI,
                "scope": "openid profile workbench_api",
                "state": "st",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "acr_values": "tenant:demo",
            },
        )
        login_page = _follow(http, first, identity.url)
        assert "Corp SSO" in login_page.text
        href = html.unescape(re.search(r'class="upstream" href="([^"]+)"', login_page.text)[1])
        to_upstream = http.get(href)
        assert to_upstream.headers["location"].startswith(upstream.url + "/authorize?")
        at_upstream = _follow(http, to_upstream, upstream.url)  # -> upstream's /login
        page = _follow(http, at_upstream, upstream.url)
        posted = http.post(
            upstream.url + "/login",
            data={
                "csrf_token": form_value(page.text, "csrf_token"),
                "next": form_value(page.text, "next"),
                "tenant": "corp",
                "username": "erin",
                "password": UPSTREAM_PASSWORD,
            },
        )
        assert posted.status_code == 303, posted.text
        back = _follow(http, posted, upstream.url)  # upstream authorize -> our callback
        assert back.headers["location"].startswith(identity.url + "/login/upstream-callback")
        callback = _follow(http, back, upstream.url)
        assert callback.status_code == 303, callback.text
        done = _follow(http, callback, identity.url)  # our authorize again, now logged in
        code = query_of(done.headers["location"])["code"]
        tokens = browser.exchange("notebook", code, verifier).json()
    finally:
        browser.close()
    claims = JwtVerifier(identity.url, "workbench-api", RemoteJwks(identity.url + "/jwks")).verify(
        tokens["access_token"]
    )
    assert claims["preferred_username"] == "corpidp:erin"
    assert claims["roles"] == ["DataModelManagement", "Development"]
    assert claims["tenant_id"] == "demo"
    user = identity.directory.get_user("demo", "corpidp:erin")
    assert user.source == "oidc:corpidp"
    assert user.email == "erin@corp.example"
    assert user.password_hash is None


def test_presets() -> None:
    azure = OidcSettings.from_document(
        {"name": "entra", "preset": "azure", "clientId": "c", "tenant": "0000-1111"}
    )
    assert azure.resolved_discovery_url() == (
        "https://login.microsoftonline.com/0000-1111/v2.0/.well-known/openid-configuration"
    )
    google = OidcSettings.from_document({"name": "g", "preset": "google", "clientId": "c"})
    assert google.resolved_discovery_url().startswith("https://accounts.google.com/")
    for preset in ("microsoft", "meta"):
        assert OidcSettings.from_document(
            {"name": "x", "preset": preset, "clientId": "c"}
        ).resolved_discovery_url()
    with pytest.raises(ValidationError):
        OidcSettings.from_document({"name": "x", "preset": "azure", "clientId": "c"})
    with pytest.raises(ValidationError):
        OidcSettings.from_document({"name": "x", "clientId": "c"})  # generic needs an issuer
