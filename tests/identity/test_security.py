"""The security suite: every attack below must be refused (0 accepted).

Tokens are checked where they are used: the Asset Repository runs with
:class:`~workbench.identity.verification.JwtAuthenticator` against the Identity service's JWKS
over HTTP; protocol attacks go to the Identity service itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.identity.conftest import REDIRECT_URI, Browser, IdentityInstance, form_value
from workbench.identity.verification import JwtAuthenticator, JwtVerifier, RemoteJwks
from workbench.services.asset_repository import create_app as asset_repository_app
from workbench.testing.http import ServiceServer


@pytest.fixture
def assets(identity: IdentityInstance) -> Iterator[str]:
    verifier = JwtVerifier(identity.url, "workbench-api", RemoteJwks(identity.url + "/jwks"))
    app = asset_repository_app(workbench=identity.workbench, auth=JwtAuthenticator(verifier))
    with ServiceServer(app) as server:
        yield server.url


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(identity: IdentityInstance, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": identity.url,
        "aud": "workbench-api",
        "sub": "attacker",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "scope": "workbench_api",
        "tenant_id": "demo",
        "allowed_tenants": ["demo"],
        "roles": ["DataModelManagement", "StreamDataWriter"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(identity: IdentityInstance, claims: dict[str, Any], key: RSAKey | None = None) -> str:
    signing = identity.service.provider.keys.current()
    header = {"alg": "RS256", "kid": str(signing.kid), "typ": "JWT"}
    return jwt.encode(header, claims, key or signing)


def _read(assets: str, token: str, tenant: str = "demo") -> int:
    return httpx.get(
        f"{assets}/tenants/{tenant}/ck/stamp", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def _mutate(assets: str, token: str) -> int:
    return httpx.post(
        f"{assets}/tenants/demo/entities/apply",
        json={"entities": []},
        headers={"Authorization": f"Bearer {token}"},
    ).status_code


def test_security_suite(
    identity: IdentityInstance, assets: str, browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = _sign(identity, _claims(identity))
    assert _read(assets, valid) == 200  # the baseline is accepted
    current = identity.service.provider.keys.current()

    def expired() -> bool:
        token = _sign(
            identity,
            _claims(
                identity,
                iat=int(time.time()) - 7200,
                nbf=int(time.time()) - 7200,
                exp=int(time.time()) - 3600,
            ),
        )
        return _read(assets, token) == 200

    def not_yet_valid() -> bool:
        later = int(time.time()) + 3600
        return _read(assets, _sign(identity, _claims(identity, nbf=later, iat=later))) == 200

    def tampered_payload() -> bool:
        header, _, signature = valid.split(".")
        payload = _b64(json.dumps(_claims(identity, allowed_tenants=["demo", "other"])).encode())
        return _read(assets, f"{header}.{payload}.{signature}", "other") == 200

    def wrong_key() -> bool:
        other = RSAKey.generate_key(2048, parameters={"kid": str(current.kid)}, private=True)
        return _read(assets, _sign(identity, _claims(identity), other)) == 200

    def alg_none() -> bool:
        header = _b64(json.dumps({"alg": "none", "kid": str(current.kid), "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(identity)).encode())
        return _read(assets, f"{header}.{payload}.") == 200

    def hs256_with_public_key() -> bool:
        public_pem = current.as_pem(private=False)
        header = _b64(json.dumps({"alg": "HS256", "kid": str(current.kid), "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(identity)).encode())
        mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return _read(assets, f"{header}.{payload}.{_b64(mac)}") == 200

    def wrong_issuer() -> bool:
        return _read(assets, _sign(identity, _claims(identity, iss="http://evil.example"))) == 200

    def wrong_audience() -> bool:
        return _read(assets, _sign(identity, _claims(identity, aud="another-api"))) == 200

    def tenant_not_allowed() -> bool:
        return _read(assets, valid, "other") == 200

    def read_only_scope_mutating() -> bool:
        token = _sign(identity, _claims(identity, scope="workbench_api.read_only"))
        assert _read(assets, token) == 200
        return _mutate(assets, token) not in (401, 403)

    def revoked_refresh_token_reused() -> bool:
        code, verifier = browser.authorize("notebook")
        first = browser.exchange("notebook", code, verifier).json()["refresh_token"]

        def refresh(token: str) -> httpx.Response:
            return browser.http.post(
                "/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": token,
                    "client_id": "notebook",
                },
            )

        second = refresh(first).json()["refresh_token"]
        reused = refresh(first)  # the rotated token again: reuse
        after = refresh(second)  # the whole family is revoked now
        return reused.status_code == 200 or after.status_code == 200

    def redirect_uri_not_registered() -> bool:
        response = browser.http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": "notebook",
                "state": "s",
                "redirect_uri": "http://127.0.0.1:8765/callback/../evil",
                "scope": "openid",
                "code_challenge": "a" * 43,
                "code_challenge_method": "S256",
            },
        )
        return response.status_code in (301, 302, 303, 307)

    def login_csrf_token_missing() -> bool:
        fresh = Browser(identity.url)
        try:
            fresh.http.get(
                "/login", params={"tenant": "demo"}
            )  # has the CSRF cookie, not the token
            response = fresh.http.post(
                "/login",
                data={
                    "next": "/",
                    "tenant": "demo",
                    "username": "alice",
                    "password": "alice-password-123",
                },
            )
            return response.status_code == 303 or "wb_session" in response.cookies
        finally:
            fresh.close()

    attacks: dict[str, Callable[[], bool]] = {
        "expired": expired,
        "not-yet-valid": not_yet_valid,
        "tampered payload": tampered_payload,
        "wrong key": wrong_key,
        "alg none": alg_none,
        "HS256 with the public key": hs256_with_public_key,
        "wrong issuer": wrong_issuer,
        "wrong audience": wrong_audience,
        "tenant not allowed": tenant_not_allowed,
        "read-only scope mutating": read_only_scope_mutating,
        "revoked refresh token reused": revoked_refresh_token_reused,
        "redirect URI not registered": redirect_uri_not_registered,
        "login CSRF token missing": login_csrf_token_missing,
    }
    accepted = [name for name, attack in attacks.items() if attack()]
    with capsys.disabled():
        print(
            f"\nsecurity suite: {len(attacks)} attacks, {len(accepted)} accepted, "
            f"{len(attacks) - len(accepted)} refused"
        )
    assert accepted == []


def test_operations_need_roles(identity: IdentityInstance, assets: str) -> None:
    """CK import needs DataModelManagement; stream writes need StreamDataWriter."""
    token = _sign(identity, _claims(identity, roles=["DashboardViewer"]))
    ck = httpx.post(
        f"{assets}/tenants/demo/ck/libraries",
        content=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert ck.status_code == 403
    assert "ck-import" in ck.json()["message"]
    streams = httpx.post(
        f"{assets}/tenants/demo/streams/Demo/Meter",
        content=b"",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert streams.status_code == 403
    assert httpx.get(f"{assets}/tenants/demo/ck/stamp").status_code == 401
    garbage = httpx.get(
        f"{assets}/tenants/demo/ck/stamp", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert garbage.status_code == 401


def test_child_tenant_is_allowed_through_cascading(
    identity: IdentityInstance, browser: Browser, assets: str
) -> None:
    code, verifier = browser.authorize("notebook")
    token = browser.exchange("notebook", code, verifier).json()["access_token"]
    assert _read(assets, token, "demo-plant") == 200
    assert _read(assets, token, "other") == 403


def test_unregistered_redirect_shows_error_page(browser: Browser) -> None:
    response = browser.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": "notebook",
            "redirect_uri": REDIRECT_URI + "x",
            "scope": "openid",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400
    assert "refused" in response.text
    page = browser.http.get("/login")
    assert form_value(page.text, "csrf_token")
    assert "default-src 'none'" in page.headers["content-security-policy"]
