"""Per-tenant schemas, built on first use and rebuilt when the tenant's model changes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult

from workbench.graphql.context import GraphQLContext
from workbench.graphql.extensions import extensions_stamp, with_extensions
from workbench.graphql.schema import TenantSchema, build_schema
from workbench.messaging.base import MessageBus

if TYPE_CHECKING:
    from workbench.ck.model import CkModel
    from workbench.graphql.tenant import GraphQLTenant

__all__ = ["SchemaCache"]


def _stamp(tenant: GraphQLTenant) -> tuple[Any, ...]:
    """What the tenant's schema is built from: its CK model and its deployed extensions."""
    return (tenant.ck.stamp(), extensions_stamp(tenant))


class SchemaCache:
    """Tenant id → :class:`TenantSchema`, keyed by the tenant's CK stamp.

    :meth:`get` compares ``tenant.ck.stamp()`` (which changes when any process imports a
    library) with the stamp the cached schema was built for and rebuilds when they differ.
    Requests already running keep the schema object they started with. One build per tenant
    runs at a time; other tenants are not blocked.
    """

    def __init__(
        self, builder: Callable[..., TenantSchema] = build_schema, *, bus: MessageBus | None = None
    ) -> None:
        self._builder = builder
        self._bus = bus
        self._schemas: dict[str, TenantSchema] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        #: number of schemas built (for tests and metrics)
        self.builds = 0

    def get(self, tenant: GraphQLTenant) -> TenantSchema:
        """The schema for the tenant's current model."""
        stamp = _stamp(tenant)
        cached = self._schemas.get(tenant.id)
        if cached is not None and cached.stamp == stamp:
            return cached
        with self._lock:
            lock = self._locks.setdefault(tenant.id, threading.Lock())
        with lock:
            cached = self._schemas.get(tenant.id)
            if cached is not None and cached.stamp == stamp:
                return cached
            # the stamp is read before the model: a change in between means a rebuild next time
            model: CkModel = tenant.ck.model()
            schema = with_extensions(self._builder(model, stamp=stamp), tenant)
            self._schemas[tenant.id] = schema
            self.builds += 1
            return schema

    def current(self, tenant: GraphQLTenant) -> TenantSchema | None:
        """The cached schema when it is for the tenant's current model, else None (never builds:
        for callers that must not wait for a build)."""
        cached = self._schemas.get(tenant.id)
        if cached is not None and cached.stamp == _stamp(tenant):
            return cached
        return None

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's schema (tenant deleted)."""
        self._schemas.pop(tenant_id, None)

    def context(self, tenant: GraphQLTenant, **extra: Any) -> GraphQLContext:
        """A request context for ``tenant`` using this cache's bus."""
        return GraphQLContext(tenant, self._bus, extra.pop("principal", None), extra)

    def execute(
        self,
        tenant: GraphQLTenant,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        context: GraphQLContext | None = None,
    ) -> ExecutionResult:
        """Execute a query or mutation against the tenant's current schema (in this thread)."""
        return self.get(tenant).execute_sync(
            query,
            variables,
            context=context or self.context(tenant),
            operation_name=operation_name,
        )
