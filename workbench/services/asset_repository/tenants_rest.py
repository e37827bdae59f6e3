"""REST endpoints under ``/tenants``: the tenant registry for the Admin Panel, CLI and SDK.

Who may do what (the TenantManagement role of the platform's role model):

- list: every tenant the caller's token may use (a platform token — one issued in the system
  tenant — sees every tenant);
- create: TenantManagement; a platform token creates anywhere, a tenant owner's token only
  children of tenants it may use (tenant cascading). Backend URLs (``entities.url``,
  ``streams.url``) may only be set by a platform token: a tenant choosing a database URL could
  otherwise point at another tenant's files;
- configure and delete: TenantManagement on a tenant the caller may use; deleting needs
  ``confirm`` equal to the tenant id and fails while the tenant has children.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from workbench.errors import Forbidden, NotFound, ValidationError
from workbench.services.access import service_state
from workbench.services.audit import note_principal
from workbench.services.auth import Principal
from workbench.tenancy.ids import SYSTEM_TENANT
from workbench.tenancy.registry import BACKEND_KEYS, TenantRecord, TenantRegistry

__all__ = ["TENANT_MANAGEMENT", "is_platform", "router"]

TENANT_MANAGEMENT = "TenantManagement"

router = APIRouter(prefix="/tenants", tags=["tenants"])


async def _principal(connection: HTTPConnection) -> Principal:
    principal: Principal = service_state(connection).authenticator.authenticate(connection)
    note_principal(connection.scope, principal.subject)
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def is_platform(principal: Principal) -> bool:
    """A platform caller: a token of the system tenant (or an unrestricted dev principal)."""
    return principal.tenants is None or SYSTEM_TENANT in principal.tenants


def _may_use(principal: Principal, registry: TenantRegistry, tenant_id: str) -> bool:
    """The tenant or one of its ancestors is the caller's (a token issued before a child was
    created does not list it, but the child cascades from a tenant it does list)."""
    if is_platform(principal) or principal.may_use(tenant_id):
        return True
    if not registry.exists(tenant_id):
        return False
    return any(principal.may_use(a.id) for a in registry.ancestors(tenant_id))


def _require_management(principal: Principal, registry: TenantRegistry, tenant_id: str) -> None:
    if TENANT_MANAGEMENT not in principal.roles and principal.tenants is not None:
        raise Forbidden(
            f"{principal.subject} lacks the {TENANT_MANAGEMENT} role that managing tenant "
            f"{tenant_id!r} needs; ask a platform administrator to grant it"
        )
    if not _may_use(principal, registry, tenant_id):
        raise Forbidden(f"{principal.subject} may not manage tenant {tenant_id!r}")


def _summary(
    records: list[TenantRecord], record: TenantRecord, effective: dict[str, Any]
) -> dict[str, Any]:
    own = {k: v for k, v in record.config.items() if k not in BACKEND_KEYS}
    return {
        "id": record.id,
        "parent": record.parent,
        "description": record.description,
        "created": record.created.isoformat(),
        "children": sorted(r.id for r in records if r.parent == record.id),
        "backends": {k: record.config.get(k) for k in sorted(BACKEND_KEYS)},
        "config": own,
        "inherited": {
            k: v for k, v in effective.items() if k not in record.config and k not in BACKEND_KEYS
        },
    }


@router.get("", summary="Tenants the caller may use, with parent, children and configuration")
async def list_tenants(connection: HTTPConnection, principal: PrincipalDep) -> JSONResponse:
    registry = service_state(connection).workbench.registry

    def listing() -> list[dict[str, Any]]:
        records = registry.list()
        return [
            _summary(records, r, registry.effective_config(r.id))
            for r in records
            if _may_use(principal, registry, r.id)
        ]

    return JSONResponse(await run_in_threadpool(listing))


class TenantCreate(BaseModel):
    id: str = Field(description="Tenant id: ^[a-z][a-z0-9-]{1,62}$")
    parent: str | None = None
    description: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Configuration keys; entities.url and streams.url (server backends) only "
        "for platform administrators. Unset, the tenant gets embedded SQLite and DuckDB.",
    )


@router.post("", status_code=201, summary="Create a tenant (embedded or server backends)")
async def create_tenant(
    connection: HTTPConnection, principal: PrincipalDep, body: TenantCreate
) -> JSONResponse:
    workbench = service_state(connection).workbench
    if body.parent is None:
        if not is_platform(principal):
            raise Forbidden(
                f"{principal.subject} may only create child tenants of its own tenants; "
                "give a parent"
            )
        _require_management(principal, workbench.registry, body.id)
    else:
        _require_management(principal, workbench.registry, body.parent)
    backends = sorted(set(body.config) & BACKEND_KEYS)
    if backends and not is_platform(principal):
        raise Forbidden(
            f"only platform administrators may choose backend URLs ({', '.join(backends)}); "
            "leave them out for embedded backends"
        )

    def create() -> dict[str, Any]:
        workbench.tenants.create(
            body.id, parent=body.parent, description=body.description, config=body.config
        )
        records = workbench.registry.list()
        record = workbench.registry.get(body.id)
        return _summary(records, record, workbench.registry.effective_config(body.id))

    return JSONResponse(await run_in_threadpool(create), 201)


class ConfigPatch(BaseModel):
    set: dict[str, Any] = Field(default_factory=dict, description="Keys to set on this tenant.")
    unset: list[str] = Field(
        default_factory=list, description="Own keys to remove (the inherited value shows again)."
    )


@router.patch("/{tenantId}/config", summary="Set or remove a tenant's own configuration keys")
async def configure_tenant(
    connection: HTTPConnection, principal: PrincipalDep, tenantId: str, body: ConfigPatch
) -> JSONResponse:
    workbench = service_state(connection).workbench
    _require_management(principal, workbench.registry, tenantId)
    clash = sorted(set(body.set) & set(body.unset))
    if clash:
        raise ValidationError(f"keys {clash} are both set and unset; send each key once")

    def patch() -> dict[str, Any]:
        registry = workbench.registry
        registry.get(tenantId)
        for key, value in body.set.items():
            registry.set_config(tenantId, key, value)
        for key in body.unset:
            registry.set_config(tenantId, key, None)
        return _summary(
            registry.list(), registry.get(tenantId), registry.effective_config(tenantId)
        )

    return JSONResponse(await run_in_threadpool(patch))


@router.delete("/{tenantId}", summary="Delete a tenant and all its data")
async def delete_tenant(
    connection: HTTPConnection,
    principal: PrincipalDep,
    tenantId: str,
    confirm: str = Query("", description="Must equal the tenant id."),
) -> JSONResponse:
    workbench = service_state(connection).workbench
    _require_management(principal, workbench.registry, tenantId)
    if tenantId == SYSTEM_TENANT:
        raise Forbidden("the system tenant cannot be deleted")
    if confirm != tenantId:
        raise ValidationError(
            f"deleting tenant {tenantId!r} erases all its data; confirm with ?confirm={tenantId}"
        )

    def delete() -> None:
        if not workbench.registry.exists(tenantId):
            raise NotFound(f"tenant {tenantId!r} does not exist")
        workbench.tenants.delete(tenantId, confirm=True)

    await run_in_threadpool(delete)
    return JSONResponse({"deleted": tenantId})
