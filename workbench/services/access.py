"""Who may reach which tenant: the per-request access check every tenant route depends on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path
from starlette.requests import HTTPConnection

from workbench.errors import NotFound
from workbench.services.audit import note_principal
from workbench.services.auth import READ_SCOPE, WRITE_SCOPE, Authenticator, Principal
from workbench.services.context import tenant_var
from workbench.tenancy.ids import SYSTEM_TENANT, TENANT_ID_PATTERN

if TYPE_CHECKING:
    from workbench.client.local import Tenant, Workbench

__all__ = [
    "ReadTenantDep",
    "TenantAccess",
    "TenantDep",
    "WriteTenantDep",
    "resolve_tenant",
    "service_state",
]

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class TenantAccess:
    """The authenticated caller and the tenant of the route, access already checked."""

    principal: Principal
    tenant: Tenant


def service_state(connection: HTTPConnection) -> Any:
    """The service object stored on the app (``app.state.service``)."""
    return connection.app.state.service


def resolve_tenant(
    workbench: Workbench, authenticator: Authenticator, connection: HTTPConnection, tenant_id: str
) -> TenantAccess:
    """Authenticate the caller, check the tenant is theirs, then look it up.

    Order matters: a caller without access to a tenant gets 403 whether or not it exists, so
    tokens cannot probe other tenants' names.
    """
    principal = authenticator.authenticate(connection)
    note_principal(connection.scope, principal.subject)
    principal.check_tenant(tenant_id)
    tenant_var.set(tenant_id)
    connection.scope.setdefault("state", {})["tenant"] = tenant_id
    if tenant_id == SYSTEM_TENANT or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise NotFound(f"tenant {tenant_id!r} does not exist")
    try:
        tenant = workbench.tenant(tenant_id)
    except NotFound:
        raise NotFound(
            f"tenant {tenant_id!r} does not exist; create it first (workbench tenant create)"
        ) from None
    return TenantAccess(principal, tenant)


async def _tenant_access(
    connection: HTTPConnection,
    tenantId: Annotated[str, Path(description="Tenant id, e.g. `demo`.")],
) -> TenantAccess:
    service = service_state(connection)
    access = resolve_tenant(service.workbench, service.authenticator, connection, tenantId)
    method = connection.scope.get("method", "GET")
    access.principal.check_scope(WRITE_SCOPE if method in _WRITE_METHODS else READ_SCOPE)
    return access


async def _read_access(
    connection: HTTPConnection,
    tenantId: Annotated[str, Path(description="Tenant id, e.g. `demo`.")],
) -> TenantAccess:
    service = service_state(connection)
    access = resolve_tenant(service.workbench, service.authenticator, connection, tenantId)
    access.principal.check_scope(READ_SCOPE)
    return access


#: a tenant route's access: read scope for GET, write scope for POST/PUT/PATCH/DELETE
TenantDep = Annotated[TenantAccess, Depends(_tenant_access)]
#: a tenant route that only reads, whatever its method (queries sent as POST)
ReadTenantDep = Annotated[TenantAccess, Depends(_read_access)]
WriteTenantDep = TenantDep
