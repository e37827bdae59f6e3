"""Client management over Identity's API (what the Admin Panel's Users page calls): rotating a
confidential client's secret (shown once; the old secret and its tokens stop working) and
disabling a client (no new tokens; the issued ones stop working)."""

from __future__ import annotations

import httpx

from tests.identity.conftest import Browser, IdentityInstance

REDIRECT_URI = "http://127.0.0.1:8765/callback"


def _admin_token(identity: IdentityInstance) -> str:
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
        token: str = admin.exchange("admin-cli", code, verifier).json()["access_token"]
        return token
    finally:
        admin.close()


def _client_token(identity: IdentityInstance, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        identity.url + "/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )


def test_rotate_a_client_secret_and_disable_a_client(identity: IdentityInstance) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(identity)}"}
    base = identity.url + "/api/tenants/demo/clients"
    created = httpx.post(base, headers=headers, json={"clientId": "demo-harvester"})
    assert created.status_code == 201, created.text
    old_secret = created.json()["clientSecret"]
    assert _client_token(identity, "demo-harvester", old_secret).status_code == 200

    rotated = httpx.post(f"{base}/demo-harvester/secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["clientSecret"]
    assert new_secret
    assert new_secret != old_secret
    assert _client_token(identity, "demo-harvester", old_secret).status_code == 401
    assert _client_token(identity, "demo-harvester", new_secret).status_code == 200
    listed = httpx.get(base, headers=headers).json()
    assert all("clientSecret" not in c or c["clientSecret"] is None for c in listed)

    disabled = httpx.patch(f"{base}/demo-harvester", headers=headers, json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    assert _client_token(identity, "demo-harvester", new_secret).status_code in (400, 401)
    enabled = httpx.patch(f"{base}/demo-harvester", headers=headers, json={"enabled": True})
    assert enabled.json()["enabled"] is True
    assert _client_token(identity, "demo-harvester", new_secret).status_code == 200

    audit = httpx.get(identity.url + "/api/tenants/demo/audit", headers=headers).json()
    actions = [e["action"] for e in audit]
    assert {"client.rotate-secret", "client.disable", "client.enable"} <= set(actions)


def test_a_client_of_another_tenant_is_not_found(identity: IdentityInstance) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(identity)}"}
    created = httpx.post(
        identity.url + "/api/tenants/other/clients",
        headers=headers,
        json={"clientId": "other-reader"},
    )
    assert created.status_code == 201, created.text
    wrong = httpx.post(
        identity.url + "/api/tenants/demo/clients/other-reader/secret", headers=headers
    )
    assert wrong.status_code == 404, wrong.text
    assert "other-reader" in wrong.json()["message"]
