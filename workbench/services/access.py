"""Who may reach which tenant, and what a route needs: the per-request access check every tenant
route declares (``access: ReadAccess``, ``access: EntityWriteAccess``, ... or
``Depends(requires(scope))``), the same for HTTP routes and WebSocket sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path
from starlette.requests import HTTPConnection

from workbench.errors import NotFound
from workbench.services.audit import note_principal
from workbench.services.auth import Authenticator, Principal
from workbench.services.authorization import (
    CK_IMPORT_SCOPE,
    READ_SCOPE,
    STREAM_WRITE_SCOPE,
    WRITE_SCOPE,
)
from workbench.services.context import tenant_var
from workbench.tenancy.ids import SYSTEM_TENANT, TENANT_ID_PATTERN

if TYPE_CHECKING:
    from workbench.client.local import Tenant, Workbench

__all__ = [
    "CkImportAccess",
    "EntityWriteAccess",
    "ReadAccess",
    "ReadTenantDep",
    "Requires",
    "StreamWriteAccess",
    "TenantAccess",
    "TenantDep",
    "WriteTenantDep",
    "requires",
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


class Requires:
    """A route's access requirement: an authenticated caller allowed the route's tenant and
    holding every operation in ``scopes`` (see :mod:`workbench.services.authorization`).

    Use it as a dependency (``Depends(requires(WRITE_SCOPE))``, or the ``...Access`` aliases
    below); a WebSocket session that authenticates later (graphql-transport-ws sends the token
    in its first message) calls :meth:`check` with that connection.
    """

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes

    def check(self, connection: HTTPConnection, tenant_id: str) -> TenantAccess:
        service = service_state(connection)
        access = resolve_tenant(service.workbench, service.authenticator, connection, tenant_id)
        for scope in self.scopes:
            access.principal.check_scope(scope)
        return access

    async def __call__(
        self,
        connection: HTTPConnection,
        tenantId: Annotated[str, Path(description="Tenant id, e.g. `demo`.")],
    ) -> TenantAccess:
        return self.check(connection, tenantId)


def requires(*scopes: str) -> Requires:
    """The requirement of a route that needs ``scopes`` (like Starlette's ``requires``)."""
    return Requires(*scopes)


async def _tenant_access(
    connection: HTTPConnection,
    tenantId: Annotated[str, Path(description="Tenant id, e.g. `demo`.")],
) -> TenantAccess:
    service = service_state(connection)
    access = resolve_tenant(service.workbench, service.authenticator, connection, tenantId)
    method = connection.scope.get("method", "GET")
    access.principal.check_scope(WRITE_SCOPE if method in _WRITE_METHODS else READ_SCOPE)
    return access


#: a tenant route's access: read scope for GET, write scope for POST/PUT/PATCH/DELETE
TenantDep = Annotated[TenantAccess, Depends(_tenant_access)]
#: a route that reads, whatever its method (queries sent as POST)
ReadAccess = Annotated[TenantAccess, Depends(requires(READ_SCOPE))]
#: a route that writes entities (role Development)
EntityWriteAccess = Annotated[TenantAccess, Depends(requires(WRITE_SCOPE))]
#: a route that imports CK libraries (role DataModelManagement)
CkImportAccess = Annotated[TenantAccess, Depends(requires(CK_IMPORT_SCOPE))]
#: a route that writes or deletes stream points (role StreamDataWriter or StreamDataAdmin)
StreamWriteAccess = Annotated[TenantAccess, Depends(requires(STREAM_WRITE_SCOPE))]
ReadTenantDep = ReadAccess
WriteTenantDep = EntityWriteAccess
