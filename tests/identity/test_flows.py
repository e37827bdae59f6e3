"""OAuth 2.0 / OIDC flows over real HTTP against an Identity service on a loopback port."""

from __future__ import annotations

import httpx

from tests.identity.conftest import REDIRECT_URI, Browser, IdentityInstance, form_value, query_of
from workbench.identity.verification import JwtVerifier, RemoteJwks


def _verifier(identity: IdentityInstance, audience: str = "workbench-api") -> JwtVerifier:
    return JwtVerifier(identity.url, audience, RemoteJwks(identity.url + "/jwks"))


def test_discovery_and_jwks(identity: IdentityInstance) -> None:
    doc = httpx.get(identity.url + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == identity.url
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert keys
    assert all(k["kty"] == "RSA" and "d" not in k for k in keys)
    assert httpx.get(identity.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(identity.url + "/readyz").status_code == 200
    assert "workbench_http_requests" in httpx.get(identity.url + "/metrics").text


def test_authorization_code_with_pkce(identity: IdentityInstance, browser: Browser) -> None:
    code, verifier = browser.authorize("notebook", tenant="demo-plant")
    response = browser.exchange("notebook", code, verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = _verifier(identity).verify(tokens["access_token"])
    assert claims["tenant_id"] == "demo-plant"
    assert claims["allowed_tenants"] == ["demo", "demo-plant"]  # children of granted tenants
    assert "DataModelManagement" in claims["roles"]  # TenantOwners holds every role
    assert set(claims["scope"].split()) == {"openid", "profile", "email", "roles", "workbench_api"}
    id_claims = _verifier(identity, "notebook").verify(tokens["id_token"])
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_claims["email"] == "alice@example.com"
    assert "refresh_token" in tokens
    # userinfo
    info = httpx.get(
        identity.url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert info["preferred_username"] == "alice"
    assert info["email"] == "alice@example.com"
    # a code works once (and presenting it again revokes what it gave: tests/security)
    again = browser.exchange("notebook", code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_refused(browser: Browser) -> None:
    code, _ = browser.authorize("notebook")
    response = browser.exchange("notebook", code, "x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_public_client_needs_pkce(browser: Browser) -> None:
    response = browser.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": "notebook",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": "s1",
        },
    )
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert "PKCE" in query["error_description"]


def test_consent_for_third_party_clients(browser: Browser) -> None:
    code, verifier = browser.authorize("thirdparty", scope="openid workbench_api.read_only")
    assert browser.exchange("thirdparty", code, verifier).status_code == 200
    # consent is remembered: the second time goes straight back with a code
    code, verifier = browser.authorize(
        "thirdparty", scope="openid workbench_api.read_only", consent=False
    )
    assert browser.exchange("thirdparty", code, verifier).status_code == 200


def test_user_may_not_select_a_foreign_tenant(browser: Browser) -> None:
    verifier_params = {
        "response_type": "code",
        "client_id": "notebook",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s",
        "code_challenge": "a" * 43,
        "code_challenge_method": "S256",
        "acr_values": "tenant:other",
    }
    first = browser.http.get("/authorize", params=verifier_params)
    after = browser.login(first, "alice", "alice-password-123", tenant="demo")
    response = browser.http.get(after.headers["location"])
    assert response.status_code == 302
    assert query_of(response.headers["location"])["error"] == "access_denied"


def test_refresh_rotation(identity: IdentityInstance, browser: Browser) -> None:
    code, verifier = browser.authorize("notebook")
    first = browser.exchange("notebook", code, verifier).json()
    refreshed = browser.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "notebook",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    _verifier(identity).verify(second["access_token"])


def test_client_credentials(identity: IdentityInstance) -> None:
    _, secret = identity.directory.create_client(
        "demo", "adapter", grant_types=["client_credentials"], roles=["StreamDataWriter"]
    )
    response = httpx.post(
        identity.url + "/token", data={"grant_type": "client_credentials"}, auth=("adapter", secret)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    claims = _verifier(identity).verify(body["access_token"])
    assert claims["sub"] == "client:adapter"
    assert claims["roles"] == ["StreamDataWriter"]
    assert claims["allowed_tenants"] == ["demo", "demo-plant"]
    bad = httpx.post(
        identity.url + "/token", data={"grant_type": "client_credentials"}, auth=("adapter", "nope")
    )
    assert bad.status_code == 401
    # introspection (confidential clients only) and revocation of the access token
    info = httpx.post(
        identity.url + "/introspect", data={"token": body["access_token"]}, auth=("adapter", secret)
    ).json()
    assert info["active"] is True
    assert info["sub"] == "client:adapter"
    assert (
        httpx.post(
            identity.url + "/revoke", data={"token": body["access_token"]}, auth=("adapter", secret)
        ).status_code
        == 200
    )
    info = httpx.post(
        identity.url + "/introspect", data={"token": body["access_token"]}, auth=("adapter", secret)
    ).json()
    assert info == {"active": False}


def test_device_code(identity: IdentityInstance, browser: Browser) -> None:
    start = httpx.post(
        identity.url + "/device_authorization",
        data={"client_id": "notebook", "scope": "openid workbench_api"},
    )
    assert start.status_code == 200, start.text
    device = start.json()
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device["device_code"],
        "client_id": "notebook",
    }
    pending = httpx.post(identity.url + "/token", data=poll)
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    # the user opens the verification URI, logs in, enters the code
    first = browser.http.get("/device", params={"user_code": device["user_code"]})
    after = browser.login(first, "alice", "alice-password-123", tenant="demo")
    page = browser.http.get(after.headers["location"])
    assert page.status_code == 200
    assert form_value(page.text, "user_code") == device["user_code"]
    done = browser.http.post(
        "/device",
        data={
            "csrf_token": form_value(page.text, "csrf_token"),
            "user_code": device["user_code"],
            "decision": "allow",
        },
    )
    assert done.status_code == 200
    assert "connected" in done.text
    token = httpx.post(identity.url + "/token", data=poll)
    assert token.status_code == 200, token.text
    claims = _verifier(identity).verify(token.json()["access_token"])
    assert claims["preferred_username"] == "alice"
    assert claims["tenant_id"] == "demo"
    # a device code gives one token
    assert httpx.post(identity.url + "/token", data=poll).status_code == 400


def test_end_session(identity: IdentityInstance, browser: Browser) -> None:
    code, verifier = browser.authorize("notebook")
    tokens = browser.exchange("notebook", code, verifier).json()
    response = browser.http.get(
        "/end-session",
        params={
            "id_token_hint": tokens["id_token"],
            "state": "bye",
            "post_logout_redirect_uri": "http://127.0.0.1:8765/bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8765/bye?state=bye"
    # the session is gone: authorize asks for a login again
    again = browser.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": "notebook",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert again.headers["location"].startswith("/login")


def test_failed_logins_are_throttled(identity: IdentityInstance, browser: Browser) -> None:
    page = browser.http.get("/login", params={"tenant": "demo"})
    token = form_value(page.text, "csrf_token")
    statuses = []
    for _ in range(7):
        response = browser.http.post(
            "/login",
            data={
                "csrf_token": token,
                "next": "/",
                "tenant": "demo",
                "username": "bob",
                "password": "wrong-password",
            },
        )
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    # even the right password is refused while throttled
    response = browser.http.post(
        "/login",
        data={
            "csrf_token": token,
            "next": "/",
            "tenant": "demo",
            "username": "bob",
            "password": "bob-password-123",
        },
    )
    assert response.status_code == 429
    failed = identity.directory.audit.query("demo", action="login.failed")
    assert len(failed) >= 5


def test_key_rotation_keeps_previous_key(identity: IdentityInstance) -> None:
    _, secret = identity.directory.create_client("demo", "svc", grant_types=["client_credentials"])
    old = httpx.post(
        identity.url + "/token", data={"grant_type": "client_credentials"}, auth=("svc", secret)
    ).json()["access_token"]
    verifier = _verifier(identity)
    verifier.verify(old)
    identity.service.provider.keys.rotate()
    keys = httpx.get(identity.url + "/jwks").json()["keys"]
    assert len(keys) == 2
    new = httpx.post(
        identity.url + "/token", data={"grant_type": "client_credentials"}, auth=("svc", secret)
    ).json()["access_token"]
    verifier.refetch_interval = 0  # the test does not wait for the refetch interval
    assert verifier.verify(new)["sub"] == "client:svc"  # unknown kid: JWKS refetched
    assert verifier.verify(old)["sub"] == "client:svc"  # previous key still published


def test_management_api(identity: IdentityInstance, browser: Browser) -> None:
    admin = Browser(identity.url)
    try:
        identity.directory.create_client(
            "system", "admin-cli", public=True, redirect_uris=[REDIRECT_URI], first_party=True
        )
        code, verifier = admin.authorize(
            "admin-cli",
            username="admin",
            password="admin-password-for-tests",
            tenant="system",
            scope="openid workbench_api",
        )
        token = admin.exchange("admin-cli", code, verifier).json()["access_token"]
    finally:
        admin.close()
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        identity.url + "/api/tenants/demo/users",
        headers=headers,
        json={"username": "carol", "password": "carol-password-1", "roles": ["ReportingViewer"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["ReportingViewer"]
    users = httpx.get(identity.url + "/api/tenants/demo/users", headers=headers).json()
    assert {u["username"] for u in users} == {"alice", "bob", "carol"}
    assert all("passwordHash" not in u for u in users)
    disabled = httpx.patch(
        identity.url + "/api/tenants/demo/users/carol", headers=headers, json={"enabled": False}
    )
    assert disabled.json()["enabled"] is False
    audit = httpx.get(identity.url + "/api/tenants/demo/audit", headers=headers).json()
    actions = [e["action"] for e in audit]
    assert actions[:2] == ["user.disable", "user.create"]
    assert audit[0]["requestId"]
    # bob (no UserManagement role) may not manage users
    code, verifier = browser.authorize("notebook", username="bob", password="bob-password-123")
    bob = browser.exchange("notebook", code, verifier).json()["access_token"]
    refused = httpx.get(
        identity.url + "/api/tenants/demo/users", headers={"Authorization": f"Bearer {bob}"}
    )
    assert refused.status_code == 403
    assert httpx.get(identity.url + "/api/tenants/demo/users").status_code == 401


def test_a_login_is_audited_as_the_users_last_activity(
    identity: IdentityInstance, browser: Browser
) -> None:
    browser.authorize("notebook", username="bob", password="bob-password-123")
    bob = identity.directory.get_user("demo", "bob")
    assert identity.directory.audit is not None
    [entry] = identity.directory.audit.query("demo", actor=bob.id, action="login.succeeded")
    assert entry.target == "bob"
