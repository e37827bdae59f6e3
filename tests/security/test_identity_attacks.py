"""Issue 18, Identity side: each attack against a real Identity service on loopback, one test
per attack, asserting the exact status and error code, and that the service is still healthy.
Every negative test has a positive twin (the legitimate variant succeeds)."""

# ruff: noqa: F811 - the fixtures are imported from the identity tests
from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.identity.conftest import (  # noqa: F401
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    REDIRECT_URI,
    Browser,
    IdentityInstance,
    browser,
    form_value,
    identity,
    pkce_pair,
    query_of,
)

attack = pytest.mark.attack


def healthy(url: str) -> None:
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def _token(browser: Browser, client_id: str = "notebook", **kwargs: object) -> dict[str, str]:
    code, verifier = browser.authorize(client_id, **kwargs)  # type: ignore[arg-type]
    response = browser.exchange(client_id, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


@pytest.fixture
def platform(identity: IdentityInstance) -> Iterator[Browser]:
    """A browser signed in as the platform admin through a system-tenant first-party client."""
    identity.directory.create_client(
        "system", "admin-ui", public=True, redirect_uris=[REDIRECT_URI], first_party=True
    )
    b = Browser(identity.url)
    try:
        yield b
    finally:
        b.close()


def _admin_token(platform: Browser) -> str:
    return _token(platform, "admin-ui", username="admin", password=ADMIN_PASSWORD, tenant="system")[
        "access_token"
    ]


def _create_client(url: str, token: str, tenant: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{url}/api/tenants/{tenant}/clients",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


# ------------------------------------------------------------------ 3. token harvesting


@attack
def test_tenant_owner_cannot_mark_a_client_first_party(
    identity: IdentityInstance, browser: Browser
) -> None:
    owner = _token(browser)["access_token"]  # alice, TenantOwners of demo
    response = _create_client(
        identity.url,
        owner,
        "demo",
        clientId="harvester",
        public=True,
        redirectUris=[REDIRECT_URI],
        firstParty=True,
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "FORBIDDEN"
    assert "firstParty" in response.json()["message"]
    assert identity.directory.get_client("harvester") is None
    healthy(identity.url)


def test_platform_admin_may_mark_a_client_first_party(
    identity: IdentityInstance, platform: Browser, browser: Browser
) -> None:
    response = _create_client(
        identity.url,
        _admin_token(platform),
        "demo",
        clientId="demo-portal",
        public=True,
        redirectUris=[REDIRECT_URI],
        firstParty=True,
    )
    assert response.status_code == 201, response.text
    assert response.json()["firstParty"] is True
    owner = _token(browser)["access_token"]  # and a tenant owner may add a third-party one
    plain = _create_client(
        identity.url,
        owner,
        "demo",
        clientId="demo-app",
        public=True,
        redirectUris=[REDIRECT_URI],
    )
    assert plain.status_code == 201, plain.text


def _authorize_params(client_id: str, tenant: str | None = None) -> dict[str, str]:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid workbench_api",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if tenant:
        params["acr_values"] = f"tenant:{tenant}"
    return params


@attack
def test_tenant_client_gets_no_token_for_a_user_of_another_tenant(
    identity: IdentityInstance, browser: Browser
) -> None:
    identity.directory.create_user("other", "olga", password="olga-password-123")
    first = browser.http.get("/authorize", params=_authorize_params("notebook", "other"))
    after = browser.login(first, "olga", "olga-password-123", "other")
    assert after.status_code == 303, after.text
    response = browser.http.get(after.headers["location"])
    assert response.status_code == 302, response.text
    query = query_of(response.headers["location"])
    assert query.get("error") == "access_denied", query
    assert "code" not in query
    healthy(identity.url)


def test_system_client_serves_users_of_every_tenant(
    identity: IdentityInstance, platform: Browser
) -> None:
    identity.directory.create_user("other", "olga", password="olga-password-123")
    token = _token(
        platform, "admin-ui", username="olga", password="olga-password-123", tenant="other"
    )
    assert token["access_token"]


def test_tenant_client_serves_its_tenant_and_children(browser: Browser) -> None:
    assert _token(browser, tenant="demo-plant")["access_token"]


@attack
def test_consent_is_shown_for_a_client_that_is_not_first_party(
    identity: IdentityInstance, browser: Browser
) -> None:
    first = browser.http.get("/authorize", params=_authorize_params("thirdparty"))
    after = browser.login(first, "alice", DEMO_PASSWORD, "demo")
    page = browser.http.get(after.headers["location"])
    assert page.status_code == 200
    assert "Allow" in page.text
    assert "thirdparty" in page.text
    healthy(identity.url)


# ------------------------------------------------------------------ 4. revocation


@attack
def test_a_revoked_access_token_is_refused_by_a_service_within_2_s(
    identity: IdentityInstance, browser: Browser
) -> None:
    """A service's view (the poller the Asset Repository uses, over HTTP); across processes and
    end to end through the Asset Repository: tests/identity/test_revocation.py."""
    import time

    from workbench.errors import Unauthenticated
    from workbench.identity.revocation import RemoteRevocations, check_not_revoked
    from workbench.identity.verification import JwtVerifier, RemoteJwks

    revocations = RemoteRevocations.for_issuer(identity.url)
    revocations.refresh()
    verifier = JwtVerifier(identity.url, "workbench-api", RemoteJwks.for_issuer(identity.url))
    tokens = _token(browser)
    claims = verifier.verify(tokens["access_token"])
    check_not_revoked(revocations, claims)  # positive twin: accepted before the revocation
    revocations.start()
    try:
        revoked = browser.http.post(
            "/revoke",
            data={"token": tokens["access_token"], "client_id": "notebook"},
        )
        assert revoked.status_code == 200
        start = time.monotonic()
        while not revocations.revoked(claims):
            assert time.monotonic() - start < 2.0, "the revocation took longer than 2 s"
            time.sleep(0.02)
        with pytest.raises(Unauthenticated, match="revoked"):
            check_not_revoked(revocations, claims)
    finally:
        revocations.stop()
    healthy(identity.url)


# ------------------------------------------------------------------ 7. login throttling


def _login(b: Browser, tenant: str, username: str, password: str) -> httpx.Response:
    page = b.http.get("/login", params={"tenant": tenant})
    data = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "next": "/",
        "tenant": tenant,
        "username": username,
        "password": password,
    }
    return b.http.post("/login", data=data)


@attack
def test_bad_passwords_from_one_address_do_not_lock_out_another_account(
    identity: IdentityInstance, browser: Browser
) -> None:
    for _ in range(5):
        assert _login(browser, "demo", "bob", "wrong-password").status_code in (401, 429)
    locked = _login(browser, "demo", "bob", "bob-password-123")
    assert locked.status_code == 429  # bob himself is throttled
    assert "Retry-After" in locked.headers
    other = Browser(identity.url)  # same address (loopback), another account
    try:
        assert _login(other, "demo", "alice", DEMO_PASSWORD).status_code == 303
    finally:
        other.close()
    healthy(identity.url)


@attack
def test_spraying_many_accounts_from_one_address_is_throttled(
    identity: IdentityInstance, browser: Browser
) -> None:
    statuses = [_login(browser, "demo", f"nobody{i}", "guess").status_code for i in range(30)]
    assert statuses[0] == 401
    assert statuses[-1] == 429, statuses  # the address is throttled for wrong passwords
    healthy(identity.url)


# ------------------------------------------------------------------ 8. logout


@attack
def test_logout_ends_the_server_side_session(identity: IdentityInstance, browser: Browser) -> None:
    _token(browser)
    cookie = browser.http.cookies.get("wb_session")
    assert cookie
    # positive twin: the session authorises /authorize without a login
    again = browser.http.get("/authorize", params=_authorize_params("notebook"))
    assert again.status_code == 302
    assert "code=" in again.headers["location"]
    assert browser.http.get("/end-session").status_code == 200
    replay = httpx.get(
        f"{identity.url}/authorize",
        params=_authorize_params("notebook"),
        cookies={"wb_session": cookie},
    )
    assert replay.status_code == 302
    assert replay.headers["location"].startswith("/login"), replay.headers["location"]
    healthy(identity.url)


# ------------------------------------------------------------------ 9. bad inputs


@attack
def test_backslash_redirect_uri_is_a_clear_400(identity: IdentityInstance) -> None:
    params = _authorize_params("notebook") | {"redirect_uri": "http://127.0.0.1:8765\\@evil/cb"}
    response = httpx.get(f"{identity.url}/authorize", params=params)
    assert response.status_code == 400, response.text[:500]
    assert "redirect_uri" in response.text
    healthy(identity.url)


@attack
def test_errors_do_not_echo_huge_inputs(identity: IdentityInstance) -> None:
    huge = "x" * 8000
    response = httpx.get(f"{identity.url}/authorize", params=_authorize_params(huge), timeout=10)
    assert response.status_code == 400, response.text[:500]
    assert "x" * 500 not in response.text  # cut, not echoed
    assert "/tmp" not in response.text
    healthy(identity.url)


# ------------------------------------------------------------------ 10. smaller ones


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@attack
def test_introspection_is_limited_to_the_tokens_tenant(
    identity: IdentityInstance, browser: Browser
) -> None:
    _, spy = identity.directory.create_client("other", "spy")
    _, resource = identity.directory.create_client("demo", "demo-resource")
    assert spy
    assert resource
    token = _token(browser)["access_token"]
    refused = httpx.post(
        f"{identity.url}/introspect", data={"token": token}, headers=_basic("spy", spy)
    )
    assert refused.status_code == 200
    assert refused.json() == {"active": False}
    allowed = httpx.post(
        f"{identity.url}/introspect",
        data={"token": token},
        headers=_basic("demo-resource", resource),
    )
    assert allowed.json()["active"] is True
    healthy(identity.url)


@attack
def test_a_disallowed_scope_is_invalid_scope(identity: IdentityInstance) -> None:
    _, secret = identity.directory.create_client(
        "demo", "reader", scopes=["workbench_api.read_only"]
    )
    assert secret
    refused = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api"},
        headers=_basic("reader", secret),
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_scope"
    allowed = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api.read_only"},
        headers=_basic("reader", secret),
    )
    assert allowed.status_code == 200
    assert allowed.json()["scope"] == "workbench_api.read_only"
    healthy(identity.url)


@attack
def test_client_ids_of_other_tenants_cannot_be_probed(
    identity: IdentityInstance, browser: Browser
) -> None:
    identity.directory.create_client("other", "secret-project")
    owner = _token(browser)["access_token"]
    probe = _create_client(identity.url, owner, "demo", clientId="secret-project")
    unused = _create_client(identity.url, owner, "demo", clientId="secret-project-2")
    assert unused.status_code == 201
    own = _create_client(identity.url, owner, "demo", clientId="secret-project-2")
    assert probe.status_code != 409, probe.text
    assert probe.status_code == own.status_code == 400, (probe.text, own.text)
    assert probe.json()["message"].replace("secret-project", "ID") == own.json()["message"].replace(
        "secret-project-2", "ID"
    )
    healthy(identity.url)


@attack
def test_reusing_an_authorization_code_revokes_the_first_tokens(
    identity: IdentityInstance, browser: Browser
) -> None:
    code, verifier = browser.authorize("notebook")
    first = browser.exchange("notebook", code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    again = browser.exchange("notebook", code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    info = httpx.get(
        f"{identity.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 401
    refresh = browser.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "notebook",
        },
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"
    healthy(identity.url)


@attack
def test_userinfo_with_a_bad_token_says_invalid_token(
    identity: IdentityInstance, browser: Browser
) -> None:
    response = httpx.get(
        f"{identity.url}/userinfo", headers={"Authorization": "Bearer not.a.token"}
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    good = _token(browser)["access_token"]
    ok = httpx.get(f"{identity.url}/userinfo", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200
    healthy(identity.url)


def test_discovery_lists_real_acr_values(identity: IdentityInstance) -> None:
    values = httpx.get(f"{identity.url}/.well-known/openid-configuration").json()[
        "acr_values_supported"
    ]
    assert "tenant:<tenant id>" not in values
    assert "tenant:demo" in values
    assert "tenant:other" in values
