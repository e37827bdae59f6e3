"""The Identity service's management REST API under ``/api``: users, roles, groups, clients,
upstream providers and the audit log of a tenant (roles UserManagement / TenantManagement; a
token of the system tenant manages every tenant), and signing-key rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from workbench.errors import Conflict, Forbidden, NotFound, ValidationError
from workbench.identity.ldap import LdapSettings
from workbench.identity.model import ROLES
from workbench.identity.upstream import OidcSettings
from workbench.services.context import current_request_id
from workbench.services.identity.service import IdentityService, cut, service_of
from workbench.tenancy.ids import SYSTEM_TENANT

__all__ = ["api", "router"]

api = APIRouter(prefix="/api/tenants/{tenantId}", tags=["management"])
#: the routes outside a tenant (key rotation, the role list)
router = APIRouter()


class UserCreate(BaseModel):
    username: str
    password: str | None = Field(default=None, description="Omit for upstream-only users.")
    email: str | None = None
    name: str | None = None
    roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class UserPatch(BaseModel):
    enabled: bool | None = None
    email: str | None = None
    name: str | None = None


class PasswordChange(BaseModel):
    password: str


class ClientCreate(BaseModel):
    """A new client: least privilege unless asked otherwise (no roles, consent shown, and a
    client-credentials client reads only)."""

    clientId: str
    name: str | None = None
    public: bool = False
    redirectUris: list[str] = Field(default_factory=list)
    postLogoutRedirectUris: list[str] = Field(default_factory=list)
    grantTypes: list[str] | None = None
    scopes: list[str] | None = Field(
        default=None,
        description="Allowed scopes; default: workbench_api.read_only for a client that only "
        "uses client_credentials, every scope for clients that sign users in.",
    )
    roles: list[str] = Field(default_factory=list)
    firstParty: bool = Field(
        default=False,
        description="Skip the consent page; only platform administrators (system tenant) "
        "may set it.",
    )


@dataclass(frozen=True)
class _Call:
    """One management request: the service, and who asks (for the audit log)."""

    service: IdentityService
    actor: str
    request_id: str | None

    @property
    def audit(self) -> dict[str, Any]:
        return {"actor": self.actor, "request_id": self.request_id}


def _call(request: Request, tenant_id: str, role: str = "UserManagement") -> _Call:
    """The caller, who must hold ``role`` for ``tenant_id`` (see ``IdentityService.caller``)."""
    service = service_of(request)
    principal = service.caller(request, role, tenant_id)
    return _Call(service, principal.subject, current_request_id())


@api.get("/users", summary="Users of the tenant")
async def api_list_users(request: Request, tenantId: str) -> list[dict[str, Any]]:
    call = _call(request, tenantId)
    return [u.public() for u in call.service.directory.list_users(tenantId)]


@api.post("/users", status_code=201, summary="Create a user")
async def api_create_user(request: Request, tenantId: str, body: UserCreate) -> dict[str, Any]:
    call = _call(request, tenantId)
    user = await run_in_threadpool(
        lambda: call.service.directory.create_user(
            tenantId,
            body.username,
            password=body.password,
            email=body.email,
            name=body.name,
            roles=body.roles,
            groups=body.groups,
            **call.audit,
        )
    )
    return user.public()


@api.patch("/users/{username}", summary="Enable/disable a user, change email or name")
async def api_patch_user(
    request: Request, tenantId: str, username: str, body: UserPatch
) -> dict[str, Any]:
    call = _call(request, tenantId)
    user = call.service.directory.update_user(
        tenantId, username, enabled=body.enabled, email=body.email, name=body.name, **call.audit
    )
    return user.public()


@api.post("/users/{username}/password", summary="Set a user's password")
async def api_password(
    request: Request, tenantId: str, username: str, body: PasswordChange
) -> dict[str, Any]:
    call = _call(request, tenantId)
    user = await run_in_threadpool(
        lambda: call.service.directory.set_password(tenantId, username, body.password, **call.audit)
    )
    return user.public()


async def _set_role(
    request: Request, tenant_id: str, username: str, role: str, granted: bool
) -> dict[str, Any]:
    call = _call(request, tenant_id)
    user = call.service.directory.set_role(tenant_id, username, role, granted, **call.audit)
    return user.public()


@api.put("/users/{username}/roles/{role}", summary="Grant a role")
async def api_grant(request: Request, tenantId: str, username: str, role: str) -> dict[str, Any]:
    return await _set_role(request, tenantId, username, role, True)


@api.delete("/users/{username}/roles/{role}", summary="Revoke a role")
async def api_revoke(request: Request, tenantId: str, username: str, role: str) -> dict[str, Any]:
    return await _set_role(request, tenantId, username, role, False)


@api.get("/groups", summary="Groups of the tenant")
async def api_groups(request: Request, tenantId: str) -> list[dict[str, Any]]:
    call = _call(request, tenantId)
    return [g.to_document() for g in call.service.directory.list_groups(tenantId)]


@api.get("/clients", summary="OAuth clients of the tenant")
async def api_clients(request: Request, tenantId: str) -> list[dict[str, Any]]:
    call = _call(request, tenantId)
    return [c.info() for c in call.service.directory.list_clients(tenantId)]


@api.post("/clients", status_code=201, summary="Register a client (the secret is shown once)")
async def api_create_client(request: Request, tenantId: str, body: ClientCreate) -> dict[str, Any]:
    call = _call(request, tenantId)
    service = call.service
    if body.firstParty and not service.platform_caller(request):
        raise Forbidden(
            "only platform administrators (a token of the system tenant) may set firstParty: "
            "first-party clients skip the consent page; register the client without it"
        )
    taken = ValidationError(
        # the same answer whichever tenant holds the id: ids cannot be probed across tenants
        f"client id {cut(body.clientId)!r} is not available; choose another client id "
        f"(for example prefixed with your tenant id, {tenantId}-...)"
    )
    if service.directory.get_client(body.clientId) is not None:
        raise taken
    try:
        client, secret = await run_in_threadpool(
            lambda: service.directory.create_client(
                tenantId,
                body.clientId,
                name=body.name,
                public=body.public,
                redirect_uris=body.redirectUris,
                post_logout_redirect_uris=body.postLogoutRedirectUris,
                grant_types=body.grantTypes,
                scopes=body.scopes,
                roles=body.roles,
                first_party=body.firstParty,
                **call.audit,
            )
        )
    except Conflict:  # registered concurrently
        raise taken from None
    return client.info() | {"clientSecret": secret}


class ClientPatch(BaseModel):
    enabled: bool = Field(description="false: no new tokens, and the issued ones stop working")


def _check_tenant_client(call: _Call, tenant_id: str, client_id: str) -> None:
    client = call.service.directory.get_client(client_id)
    if client is None or client.tenant_id != tenant_id:
        raise NotFound(f"client {cut(client_id)!r} does not exist in tenant {tenant_id!r}")


@api.patch("/clients/{clientId}", summary="Disable or enable a client")
async def api_patch_client(
    request: Request, tenantId: str, clientId: str, body: ClientPatch
) -> dict[str, Any]:
    call = _call(request, tenantId)
    _check_tenant_client(call, tenantId, clientId)
    client = await run_in_threadpool(
        lambda: call.service.directory.set_client_enabled(clientId, body.enabled, **call.audit)
    )
    info: dict[str, Any] = client.info()
    return info


@api.post("/clients/{clientId}/secret", summary="Rotate a client's secret (shown once)")
async def api_rotate_client_secret(
    request: Request, tenantId: str, clientId: str
) -> dict[str, Any]:
    call = _call(request, tenantId)
    _check_tenant_client(call, tenantId, clientId)
    secret = await run_in_threadpool(
        lambda: call.service.directory.rotate_client_secret(clientId, **call.audit)
    )
    return {"clientId": clientId, "clientSecret": secret}


@api.get("/upstreams", summary="Upstream identity providers (secrets left out)")
async def api_upstreams(request: Request, tenantId: str) -> list[dict[str, Any]]:
    call = _call(request, tenantId, "TenantManagement")
    return [
        {k: v for k, v in doc.items() if k not in ("bindPassword", "clientSecret")}
        for doc in call.service.directory.list_upstreams(tenantId)
    ]


@api.put("/upstreams/{name}", summary="Add or replace an upstream provider (LDAP or OIDC)")
async def api_put_upstream(
    request: Request, tenantId: str, name: str, body: dict[str, Any]
) -> dict[str, str]:
    call = _call(request, tenantId, "TenantManagement")
    doc = dict(body, name=name)
    if doc.get("kind") == "ldap":
        LdapSettings.from_document(doc)
    elif doc.get("kind") == "oidc":
        OidcSettings.from_document(doc)
    call.service.directory.put_upstream(tenantId, name, doc, actor=call.actor)
    return {"name": name}


@api.get("/audit", summary="The tenant's audit log, newest first")
async def api_audit(
    request: Request,
    tenantId: str,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    service = service_of(request)
    principal = service.authenticator.authenticate(request)
    if not principal.roles & {"UserManagement", "TenantManagement"}:
        raise Forbidden(f"{principal.subject} needs UserManagement or TenantManagement")
    service.caller(
        request, sorted(principal.roles & {"UserManagement", "TenantManagement"})[0], tenantId
    )
    audit = service.directory.audit
    if audit is None:
        return []
    entries = await run_in_threadpool(
        lambda: audit.query(tenantId, actor=actor, action=action, limit=max(1, min(limit, 1000)))
    )
    return [e.to_document() for e in entries]


@router.post("/api/keys/rotate", tags=["management"], summary="Rotate the signing key")
async def api_rotate_keys(request: Request) -> dict[str, str]:
    service = service_of(request)
    principal = service.caller(request, "TenantManagement", SYSTEM_TENANT)
    kid = await run_in_threadpool(service.provider.keys.rotate)
    service.provider.verifier.refresh()
    if service.directory.audit is not None:
        service.directory.audit.record(
            SYSTEM_TENANT,
            actor=principal.subject,
            action="keys.rotate",
            target=kid,
            request_id=current_request_id(),
        )
    return {"kid": kid}


@router.get("/api/roles", tags=["management"], summary="The platform's roles")
async def api_roles() -> list[str]:
    return list(ROLES)
