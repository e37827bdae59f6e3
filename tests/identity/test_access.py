"""Roles and access (docs/security.md): least privilege for new clients, tenant-bound clients
narrow the tokens' tenants, and revoking a refresh token revokes its access tokens."""

from __future__ import annotations

import httpx

from tests.identity.conftest import REDIRECT_URI, Browser, IdentityInstance
from workbench.identity.verification import JwtVerifier, StaticJwks


def _claims(identity: IdentityInstance, token: str) -> dict[str, object]:
    keys = identity.service.provider.keys.public_keys
    return JwtVerifier(identity.url, "workbench-api", StaticJwks(keys)).verify(token)


def test_a_new_machine_client_reads_only_unless_given_more(identity: IdentityInstance) -> None:
    client, secret = identity.directory.create_client("demo", "reporter")
    assert client.scopes == ["workbench_api.read_only"]
    assert client.roles == []
    assert client.first_party is False
    token = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials"},
        auth=("reporter", secret),
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "workbench_api.read_only"
    writer = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api"},
        auth=("reporter", secret),
    )
    assert writer.status_code == 400
    assert writer.json()["error"] == "invalid_scope"
    assert "workbench_api" in writer.json()["error_description"]
    # given explicitly, the scope is there
    _, full = identity.directory.create_client("demo", "loader", scopes=["workbench_api"])
    granted = httpx.post(
        f"{identity.url}/token", data={"grant_type": "client_credentials"}, auth=("loader", full)
    )
    assert granted.json()["scope"] == "workbench_api"


def test_a_tenant_client_narrows_the_allowed_tenants(
    identity: IdentityInstance, browser: Browser
) -> None:
    identity.directory.grant_tenant("demo", "alice", "other")
    code, verifier = browser.authorize("notebook")
    through_demo = _claims(
        identity, browser.exchange("notebook", code, verifier).json()["access_token"]
    )
    assert through_demo["allowed_tenants"] == ["demo", "demo-plant"]  # not "other"
    identity.directory.create_client(
        "system", "portal", public=True, redirect_uris=[REDIRECT_URI], first_party=True
    )
    code, verifier = browser.authorize("portal")
    through_system = _claims(
        identity, browser.exchange("portal", code, verifier).json()["access_token"]
    )
    assert through_system["allowed_tenants"] == ["demo", "demo-plant", "other"]


def test_revoking_a_refresh_token_revokes_its_access_tokens(
    identity: IdentityInstance, browser: Browser
) -> None:
    code, verifier = browser.authorize("notebook")
    tokens = browser.exchange("notebook", code, verifier).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{identity.url}/userinfo", headers=bearer).status_code == 200
    revoked = browser.http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": "notebook"}
    )
    assert revoked.status_code == 200
    answer = httpx.get(f"{identity.url}/userinfo", headers=bearer)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    listed = httpx.get(f"{identity.url}/revocations").json()
    assert _claims(identity, tokens["access_token"])["jti"] in listed["tokens"]
