"""Fixtures of the identity tests: Identity services on free loopback ports, and a scripted
browser (httpx with cookies) that walks the login, consent and device pages."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from workbench.client.local import Workbench, open_workbench
from workbench.services.identity.app import IdentityService, create_app
from workbench.settings import Settings
from workbench.testing.http import DeferredApp, ServiceServer

ADMIN_PASSWORD = "admin-password-for-tests"
DEMO_PASSWORD = "alice-password-123"
REDIRECT_URI = "http://127.0.0.1:8765/callback"


@dataclass
class IdentityInstance:
    url: str
    workbench: Workbench
    service: IdentityService
    server: ServiceServer

    @property
    def directory(self) -> Any:
        return self.service.directory


def start_identity(home: Path, *, prepare: Any = None) -> tuple[IdentityInstance, Any]:
    deferred = DeferredApp()
    server = ServiceServer(deferred)
    workbench = open_workbench(home)
    if prepare is not None:
        prepare(workbench)
    settings = Settings(
        home=home,
        identity_issuer=server.url,
        admin_password=ADMIN_PASSWORD,
        identity_login_max_failures=5,
    )
    deferred.app = create_app(settings, workbench=workbench, announce=False)
    server.start()
    return IdentityInstance(server.url, workbench, deferred.app.state.service, server), deferred


def _prepare_tenants(workbench: Workbench) -> None:
    workbench.tenants.create("demo")
    workbench.tenants.create("demo-plant", parent="demo")
    workbench.tenants.create("other")


@pytest.fixture
def identity(tmp_path: Path) -> Iterator[IdentityInstance]:
    instance, _ = start_identity(tmp_path / "idp", prepare=_prepare_tenants)
    directory = instance.directory
    directory.create_user(
        "demo",
        "alice",
        password=DEMO_PASSWORD,
        email="alice@example.com",
        name="Alice",
        groups=["TenantOwners"],
    )
    directory.create_user("demo", "bob", password="bob-password-123", roles=["DashboardViewer"])
    directory.create_client(
        "demo",
        "notebook",
        public=True,
        redirect_uris=[REDIRECT_URI],
        first_party=True,
        grant_types=[
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        post_logout_redirect_uris=["http://127.0.0.1:8765/bye"],
    )
    directory.create_client(
        "demo", "thirdparty", public=True, redirect_uris=[REDIRECT_URI], first_party=False
    )
    try:
        yield instance
    finally:
        instance.server.stop()
        instance.workbench.close()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def form_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field on the page:\n{page[:2000]}"
    return html.unescape(match.group(1))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A scripted browser: follows our pages by hand, posts forms with their CSRF tokens."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def login(
        self, response: httpx.Response, username: str, password: str, tenant: str | None = None
    ) -> httpx.Response:
        """From a redirect to /login: fill in the form and return the redirect after it."""
        assert response.status_code == 302, response.text
        assert response.headers["location"].startswith("/login")
        page = self.http.get(response.headers["location"])
        assert page.status_code == 200
        data = {
            "csrf_token": form_value(page.text, "csrf_token"),
            "next": form_value(page.text, "next"),
            "tenant": tenant or form_value(page.text, "tenant"),
            "username": username,
            "password": password,
        }
        return self.http.post("/login", data=data)

    def authorize(
        self,
        client_id: str,
        *,
        username: str = "alice",
        password: str = DEMO_PASSWORD,
        scope: str = "openid profile email roles workbench_api",
        tenant: str | None = None,
        redirect_uri: str = REDIRECT_URI,
        consent: bool = True,
        nonce: str = "n-0S6_WzA2Mj",
    ) -> tuple[str, str]:
        """The whole authorization-code + PKCE dance; returns (code, code_verifier)."""
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": "xyz",
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if tenant:
            params["acr_values"] = f"tenant:{tenant}"
        first = self.http.get("/authorize", params=params)
        if first.status_code == 302 and first.headers["location"].startswith("/login"):
            after = self.login(first, username, password, tenant)
            assert after.status_code == 303, after.text
            response = self.http.get(after.headers["location"])
        else:
            response = first
        if response.status_code == 200 and "Allow" in response.text and consent:
            response = self.http.post(
                "/authorize/consent",
                data={
                    "csrf_token": form_value(response.text, "csrf_token"),
                    "request": form_value(response.text, "request"),
                    "decision": "allow",
                },
            )
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(redirect_uri), location
        query = query_of(location)
        assert query.get("state") == "xyz"
        assert "code" in query, query
        return query["code"], verifier

    def exchange(self, client_id: str, code: str, verifier: str) -> httpx.Response:
        return self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
            },
        )


@pytest.fixture
def browser(identity: IdentityInstance) -> Iterator[Browser]:
    b = Browser(identity.url)
    try:
        yield b
    finally:
        b.close()
