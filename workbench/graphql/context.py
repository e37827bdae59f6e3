"""What every resolver gets as ``info.context``: the tenant, the bus, the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from graphql import GraphQLResolveInfo

from workbench.messaging.base import MessageBus

if TYPE_CHECKING:
    from workbench.graphql.tenant import GraphQLTenant
    from workbench.runtime.service import EntityService

__all__ = ["GraphQLContext", "Info"]


@dataclass
class GraphQLContext:
    """Per-request context. ``tenant`` is the in-process tenant the schema was built for;
    ``bus`` receives entity events from mutations and feeds subscriptions (None: no events);
    ``principal`` names the authenticated caller (for logs; access checks happen before
    execution). ``extra`` is free for the transport (request, response, ...)."""

    tenant: GraphQLTenant
    bus: MessageBus | None = None
    principal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def entities(self) -> EntityService:
        return self.tenant.entities


#: The resolve info resolvers of this package receive (its ``context`` is a GraphQLContext).
Info: TypeAlias = "GraphQLResolveInfo[GraphQLContext]"
