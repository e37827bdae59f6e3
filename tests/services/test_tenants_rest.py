"""The tenant registry over REST: who may list, create, configure and delete tenants."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import HTTPConnection

import workbench
from workbench.errors import Unauthenticated
from workbench.services import create_app
from workbench.services.auth import ALL_SCOPES, Authenticator, Principal
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration

PRINCIPALS = {
    # a platform administrator: a token of the system tenant with TenantManagement
    "platform": Principal(
        "admin", frozenset({"system"}), ALL_SCOPES, frozenset({"TenantManagement"})
    ),
    # the owner of tenant energy (and its children)
    "owner": Principal("owner", frozenset({"energy"}), ALL_SCOPES, frozenset({"TenantManagement"})),
    # a user of energy without the role
    "user": Principal("user", frozenset({"energy"}), ALL_SCOPES, frozenset()),
}


class RoleTokens(Authenticator):
    """The bearer token names one of :data:`PRINCIPALS`."""

    name = "test-roles"

    def authenticate(self, connection: HTTPConnection) -> Principal:
        token = connection.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in PRINCIPALS:
            raise Unauthenticated("unknown test token; send Authorization: Bearer <name>")
        return PRINCIPALS[token]


@pytest.fixture
def server(service_wb: workbench.Workbench) -> Iterator[ServiceServer]:
    with ServiceServer(create_app(workbench=service_wb, auth=RoleTokens())) as running:
        yield running


def http(server: ServiceServer, who: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {who}"}, timeout=30)


def test_platform_admin_sees_every_tenant_and_an_owner_only_theirs(server: ServiceServer) -> None:
    with http(server, "platform") as admin, http(server, "owner") as owner:
        assert {t["id"] for t in admin.get("/tenants").json()} == {"energy", "other"}
        assert [t["id"] for t in owner.get("/tenants").json()] == ["energy"]


def test_create_child_shows_inherited_configuration(server: ServiceServer) -> None:
    with http(server, "platform") as admin, http(server, "owner") as owner:
        patched = admin.patch("/tenants/energy/config", json={"set": {"ui.theme": "dark"}})
        assert patched.status_code == 200
        assert patched.json()["config"] == {"ui.theme": "dark"}
        created = owner.post("/tenants", json={"id": "energy-lab", "parent": "energy"})
        assert created.status_code == 201, created.text
        child = created.json()
        assert child["parent"] == "energy"
        assert child["inherited"] == {"ui.theme": "dark"}
        assert child["config"] == {}
        overridden = owner.patch("/tenants/energy-lab/config", json={"set": {"ui.theme": "light"}})
        assert overridden.json()["config"] == {"ui.theme": "light"}
        assert overridden.json()["inherited"] == {}
        listing = {t["id"]: t for t in admin.get("/tenants").json()}
        assert listing["energy"]["children"] == ["energy-lab"]


def test_owner_cannot_create_top_level_or_choose_backends(server: ServiceServer) -> None:
    with http(server, "owner") as owner:
        top = owner.post("/tenants", json={"id": "rogue"})
        assert top.status_code == 403
        backend = owner.post(
            "/tenants",
            json={
                "id": "energy-x",
                "parent": "energy",
                "config": {"entities.url": "sqlite:////tmp/other.db"},
            },
        )
        assert backend.status_code == 403
        assert "backend" in backend.json()["message"]
        foreign = owner.post("/tenants", json={"id": "other-x", "parent": "other"})
        assert foreign.status_code == 403


def test_user_without_the_role_cannot_manage(server: ServiceServer) -> None:
    with http(server, "user") as user:
        assert user.get("/tenants").status_code == 200
        denied = user.patch("/tenants/energy/config", json={"set": {"a": 1}})
        assert denied.status_code == 403
        assert "TenantManagement" in denied.json()["message"]


def test_delete_needs_confirmation_and_no_children(server: ServiceServer) -> None:
    with http(server, "platform") as admin:
        assert admin.post("/tenants", json={"id": "lab", "parent": "other"}).status_code == 201
        unconfirmed = admin.delete("/tenants/lab")
        assert unconfirmed.status_code == 400
        assert "confirm=lab" in unconfirmed.json()["message"]
        has_child = admin.delete("/tenants/other", params={"confirm": "other"})
        assert has_child.status_code == 409
        assert admin.delete("/tenants/lab", params={"confirm": "lab"}).status_code == 200
        assert "lab" not in {t["id"] for t in admin.get("/tenants").json()}
        assert admin.delete("/tenants/system", params={"confirm": "system"}).status_code == 403
