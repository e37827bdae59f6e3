"""Forged, tampered and misused tokens against a real Asset Repository that verifies the real
Identity service's JWTs over HTTP, and the Identity protocol attacks that already held.

One test per attack. Each asserts the exact refusal (status and error code; a 5xx is never a
refusal) and that the service is still healthy afterwards; the legitimate twin of each is
``test_the_legitimate_token_reads`` (and the positive halves noted in the tests)."""

# ruff: noqa: F811 - fixtures are imported
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.identity.conftest import REDIRECT_URI, Browser, browser  # noqa: F401
from tests.security.fixtures_ar import (  # noqa: F401
    Assets,
    assets,
    claims,
    healthy,
    identity,
    sign,
)

attack = pytest.mark.attack


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


def _read(assets: Assets, token: str, tenant: str = "demo") -> httpx.Response:
    with assets.http(token) as http:
        return http.get(f"/tenants/{tenant}/ck/stamp")


def _refused(response: httpx.Response, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert fragment.lower() in body["message"].lower(), body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def _attacker_key(kid: str = "attacker") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"}, private=True)


def _current_kid(assets: Assets) -> str:
    return str(assets.identity.service.provider.keys.current().kid)


def test_the_legitimate_token_reads(assets: Assets) -> None:
    """The positive twin of every attack below: the same request with a good token."""
    token = sign(assets.identity, claims(assets.identity))
    assert _read(assets, token).status_code == 200


# ---- forged signatures and headers: 401 UNAUTHENTICATED ---------------------------------------


def _alg_none(assets: Assets) -> str:
    header = {"alg": "none", "kid": _current_kid(assets), "typ": "JWT"}
    return _unsigned(header, claims(assets.identity)) + "."


def _hs256_with_the_public_key(assets: Assets) -> str:
    public_pem = assets.identity.service.provider.keys.current().as_pem(private=False)
    signing_input = _unsigned(
        {"alg": "HS256", "kid": _current_kid(assets), "typ": "JWT"}, claims(assets.identity)
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _tampered_payload(assets: Assets) -> str:
    valid = sign(assets.identity, claims(assets.identity))
    header, _, signature = valid.split(".")
    widened = claims(assets.identity, allowed_tenants=["demo", "other"])
    return f"{header}.{_b64(json.dumps(widened).encode())}.{signature}"


def _wrong_key_same_kid(assets: Assets) -> str:
    return sign(assets.identity, claims(assets.identity), _attacker_key(_current_kid(assets)))


def _unknown_kid(assets: Assets) -> str:
    return sign(assets.identity, claims(assets.identity), _attacker_key(), kid="attacker")


def _jku_header(assets: Assets) -> str:
    # the attacker's own key set; a verifier that follows jku would trust it
    key = _attacker_key()
    return sign(
        assets.identity, claims(assets.identity), key, kid="attacker", jku="http://evil/jwks"
    )


def _jku_header_with_the_real_kid(assets: Assets) -> str:
    key = _attacker_key(_current_kid(assets))
    return sign(assets.identity, claims(assets.identity), key, jku="http://evil/jwks")


def _x5u_header(assets: Assets) -> str:
    key = _attacker_key()
    return sign(
        assets.identity, claims(assets.identity), key, kid="attacker", x5u="http://evil/cert"
    )


def _embedded_jwk_header(assets: Assets) -> str:
    key = _attacker_key()
    return sign(
        assets.identity,
        claims(assets.identity),
        key,
        kid="attacker",
        jwk=key.as_dict(private=False),
    )


def _embedded_jwk_with_the_real_kid(assets: Assets) -> str:
    key = _attacker_key(_current_kid(assets))
    return sign(assets.identity, claims(assets.identity), key, jwk=key.as_dict(private=False))


def _not_a_jwt(assets: Assets) -> str:
    return "not-a-jwt"


def _header_not_json(assets: Assets) -> str:
    return f"{_b64(b'{nope')}.{_b64(b'{}')}.sig"


FORGED: dict[str, tuple[Callable[[Assets], str], str]] = {
    "alg-none": (_alg_none, "RS256"),
    "hs256-with-the-public-key": (_hs256_with_the_public_key, "RS256"),
    "tampered-payload": (_tampered_payload, "signature"),
    "wrong-key-same-kid": (_wrong_key_same_kid, "signature"),
    "unknown-kid": (_unknown_kid, "key"),
    "jku-header": (_jku_header, "key"),
    "jku-header-real-kid": (_jku_header_with_the_real_kid, "signature"),
    "x5u-header": (_x5u_header, "key"),
    "embedded-jwk": (_embedded_jwk_header, "key"),
    "embedded-jwk-real-kid": (_embedded_jwk_with_the_real_kid, "signature"),
    "not-a-jwt": (_not_a_jwt, "not a JWT"),
    "header-not-json": (_header_not_json, "header"),
}


@attack
@pytest.mark.parametrize("name", list(FORGED))
def test_forged_token_is_401(assets: Assets, name: str) -> None:
    forge, fragment = FORGED[name]
    _refused(_read(assets, forge(assets)), 401, "UNAUTHENTICATED", fragment)
    healthy(assets.url)


# ---- well signed, wrong claims: 401 UNAUTHENTICATED -------------------------------------------

HOUR = 3600
CLAIMS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "expired": (
        lambda: {
            "iat": int(time.time()) - 2 * HOUR,
            "nbf": int(time.time()) - 2 * HOUR,
            "exp": int(time.time()) - HOUR,
        },
        "expired",
    ),
    "not-yet-valid": (
        lambda: {"nbf": int(time.time()) + HOUR, "iat": int(time.time())},
        "not valid yet",
    ),
    "issued-in-the-future": (lambda: {"iat": int(time.time()) + HOUR}, "issue time"),
    "no-expiry": (lambda: {"exp": None}, "no expiry"),
    "wrong-issuer": (lambda: {"iss": "http://evil.example"}, "another issuer"),
    "wrong-audience": (lambda: {"aud": "another-api"}, "audience"),
    "no-subject": (lambda: {"sub": None}, "subject"),
    "no-allowed-tenants": (lambda: {"allowed_tenants": None}, "allowed_tenants"),
}


@attack
@pytest.mark.parametrize("name", list(CLAIMS))
def test_token_with_bad_claims_is_401(assets: Assets, name: str) -> None:
    overrides, fragment = CLAIMS[name]
    token = sign(assets.identity, claims(assets.identity, **overrides()))
    _refused(_read(assets, token), 401, "UNAUTHENTICATED", fragment)
    healthy(assets.url)


@attack
def test_missing_token_and_other_schemes_are_401(assets: Assets) -> None:
    with httpx.Client(base_url=assets.url, timeout=10) as http:
        missing = http.get("/tenants/demo/ck/stamp")
        basic = http.get("/tenants/demo/ck/stamp", headers={"Authorization": "Basic eDp5"})
        in_query = http.get(
            "/tenants/demo/ck/stamp",
            params={"access_token": sign(assets.identity, claims(assets.identity))},
        )
    _refused(missing, 401, "UNAUTHENTICATED", "Bearer")
    _refused(basic, 401, "UNAUTHENTICATED", "Bearer")
    _refused(in_query, 401, "UNAUTHENTICATED", "Bearer")  # tokens in URLs are not accepted
    healthy(assets.url)


# ---- valid tokens used beyond what they allow: 403 FORBIDDEN ----------------------------------


@attack
def test_token_for_another_tenant_is_403(assets: Assets) -> None:
    token = sign(assets.identity, claims(assets.identity))
    _refused(_read(assets, token, "other"), 403, "FORBIDDEN", "tenant")
    _refused(_read(assets, token, "no-such-tenant"), 403, "FORBIDDEN", "tenant")  # no probing
    assert _read(assets, token, "demo").status_code == 200
    healthy(assets.url)


def _raw_get(assets: Assets, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """A request whose path goes out exactly as written (no client-side normalisation)."""
    url = urlsplit(assets.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


TENANT_PATHS = {
    "dot-segments": ("/tenants/demo/../other/ck/stamp", 404, "NOT_FOUND"),
    "encoded-slashes": ("/tenants/demo%2F..%2Fother/ck/stamp", 404, "NOT_FOUND"),
    "upper-case": ("/tenants/DEMO/ck/stamp", 403, "FORBIDDEN"),
    "system-tenant": ("/tenants/system/ck/stamp", 403, "FORBIDDEN"),
    "nul-byte": ("/tenants/demo%00/ck/stamp", 403, "FORBIDDEN"),
    "empty-tenant": ("/tenants//ck/stamp", 404, "NOT_FOUND"),
    "encoded-letter": ("/tenants/%64emo/ck/stamp", 200, ""),  # it *is* demo: allowed
}


@attack
@pytest.mark.parametrize("name", list(TENANT_PATHS))
def test_tenant_path_trick(assets: Assets, name: str) -> None:
    path, status, code = TENANT_PATHS[name]
    token = sign(assets.identity, claims(assets.identity))
    got, body = _raw_get(assets, path, token)
    assert got == status, body
    if code:
        assert body["code"] == code, body
    assert "Other" not in json.dumps(body)
    healthy(assets.url)


@attack
def test_read_only_scope_cannot_mutate(assets: Assets) -> None:
    token = sign(assets.identity, claims(assets.identity, scope="workbench_api.read_only"))
    assert _read(assets, token).status_code == 200  # it reads
    with assets.http(token) as http:
        response = http.post("/tenants/demo/entities/apply", json={"entities": []})
    _refused(response, 403, "FORBIDDEN", "assets:write")
    healthy(assets.url)


@attack
def test_token_without_an_api_scope_cannot_read(assets: Assets) -> None:
    token = sign(assets.identity, claims(assets.identity, scope="openid profile"))
    _refused(_read(assets, token), 403, "FORBIDDEN", "assets:read")
    healthy(assets.url)


@attack
def test_operations_need_their_roles(assets: Assets) -> None:
    """CK import needs DataModelManagement, stream writes StreamDataWriter, over REST."""
    token = sign(assets.identity, claims(assets.identity, roles=["DashboardViewer"]))
    with assets.http(token) as http:
        ck = http.post(
            "/tenants/demo/ck/libraries",
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )
        streams = http.post("/tenants/demo/streams/Demo.Energy/EnergyMeter", content=b"")
    _refused(ck, 403, "FORBIDDEN", "assets:ck-import")
    _refused(streams, 403, "FORBIDDEN", "assets:streams-write")
    healthy(assets.url)


def test_child_tenant_is_allowed_through_cascading(assets: Assets, browser: Browser) -> None:
    code, verifier = browser.authorize("notebook")
    token = browser.exchange("notebook", code, verifier).json()["access_token"]
    assert _read(assets, token, "demo-plant").status_code == 200
    _refused(_read(assets, token, "other"), 403, "FORBIDDEN")


# ---- the Identity protocol (these held before; kept as one test each) -------------------------


@attack
def test_reused_refresh_token_revokes_the_family(assets: Assets, browser: Browser) -> None:
    code, verifier = browser.authorize("notebook")
    first = browser.exchange("notebook", code, verifier).json()["refresh_token"]

    def refresh(token: str) -> httpx.Response:
        return browser.http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "notebook"},
        )

    second = refresh(first)
    assert second.status_code == 200  # the legitimate rotation
    reused = refresh(first)
    after = refresh(second.json()["refresh_token"])
    for response in (reused, after):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"
    healthy(assets.identity.url)


@attack
def test_unregistered_redirect_uri_is_refused(assets: Assets, browser: Browser) -> None:
    params = {
        "response_type": "code",
        "client_id": "notebook",
        "state": "s",
        "scope": "openid",
        "code_challenge": "a" * 43,
        "code_challenge_method": "S256",
    }
    response = browser.http.get(
        "/authorize", params={**params, "redirect_uri": "http://127.0.0.1:8765/callback/../evil"}
    )
    assert response.status_code == 400, response.text
    assert "refused" in response.text
    assert "location" not in response.headers
    registered = browser.http.get("/authorize", params={**params, "redirect_uri": REDIRECT_URI})
    assert registered.status_code in (200, 302, 303)  # the twin: on to the login page
    healthy(assets.identity.url)


@attack
def test_login_without_the_csrf_token_is_refused(assets: Assets) -> None:
    fresh = Browser(assets.identity.url)
    try:
        fresh.http.get("/login", params={"tenant": "demo"})  # has the CSRF cookie, not the token
        response = fresh.http.post(
            "/login",
            data={
                "next": "/",
                "tenant": "demo",
                "username": "alice",
                "password": "alice-password-123",
            },
        )
        assert response.status_code == 400, response.text
        assert "wb_session" not in response.cookies
    finally:
        fresh.close()
    healthy(assets.identity.url)
