"""Subscriptions ``<type>Events(rtId, updateTypes)``: entity events from the tenant's bus.

Events come from whatever publishes :class:`~workbench.messaging.base.EntityEvent` on the
tenant's topic; in this process that is the GraphQL mutations. Cross-process events arrive once a
bus adapter that spans processes (RabbitMQ) is configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from workbench.ck.naming import graphql_field_name, graphql_type_name
from workbench.errors import ValidationError
from workbench.graphql.batching import BATCH_KEY, EntityBatch
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.scalars import DATETIME, UPDATE_TYPE_ENUM
from workbench.graphql.types import NameRegistry, OutputTypes
from workbench.messaging.base import EntityEvent, entity_topic

__all__ = ["build_subscription"]


def _event_source(event: EntityEvent, _info: Info, **_args: Any) -> dict[str, Any]:
    entity = dict(event.entity)
    entity[BATCH_KEY] = EntityBatch([event.rt_id])
    return {
        "updateType": event.update_type.value,
        "rtId": event.rt_id,
        "ckTypeId": event.ck_type_id,
        "timestamp": event.timestamp,
        "entity": entity,
    }


def _subscriber(type_id: str) -> Callable[..., AsyncIterator[EntityEvent]]:
    async def subscribe(
        _root: Any,
        info: Info,
        rtId: str | None = None,
        updateTypes: list[str] | None = None,
    ) -> AsyncIterator[EntityEvent]:
        context: GraphQLContext = info.context
        if context.bus is None:
            raise ValidationError(
                "subscriptions need a message bus; this server was started without one"
            )
        subscription = context.bus.subscribe(entity_topic(context.tenant.id))
        wanted = set(updateTypes or ())
        rt_id = rtId.lower() if rtId else None
        try:
            async for event in subscription:
                if not isinstance(event, EntityEvent):
                    continue
                if wanted and event.update_type.value not in wanted:
                    continue
                if rt_id is not None and event.rt_id.lower() != rt_id:
                    continue
                model = context.tenant.model
                if event.ck_type_id not in model.types or not model.is_a(event.ck_type_id, type_id):
                    continue
                yield event
        finally:
            await subscription.close()

    return subscribe


def build_subscription(outputs: OutputTypes, names: NameRegistry) -> GraphQLObjectType:
    fields: dict[str, GraphQLField] = {}
    for type_id in outputs.model.types:
        base = graphql_type_name(type_id)
        event_type = GraphQLObjectType(
            names.claim(f"{base}Event", f"events of {type_id}"),
            {
                "updateType": GraphQLField(GraphQLNonNull(UPDATE_TYPE_ENUM)),
                "rtId": GraphQLField(GraphQLNonNull(GraphQLID)),
                "ckTypeId": GraphQLField(GraphQLNonNull(GraphQLString)),
                "timestamp": GraphQLField(GraphQLNonNull(DATETIME)),
                "entity": GraphQLField(
                    outputs.entity(type_id),
                    description="The entity after the change (for DELETE: its last state).",
                ),
            },
        )
        fields[f"{graphql_field_name(base)}Events"] = GraphQLField(
            GraphQLNonNull(event_type),
            {
                "rtId": GraphQLArgument(GraphQLID, description="Only events of this entity."),
                "updateTypes": GraphQLArgument(
                    GraphQLList(GraphQLNonNull(UPDATE_TYPE_ENUM)),
                    description="Only these kinds of change (default: all).",
                ),
            },
            resolve=_event_source,
            subscribe=_subscriber(type_id),
            description=f"Inserts, updates and deletes of {type_id} entities (and subtypes).",
        )
    return GraphQLObjectType(names.claim("Subscription", "subscriptions"), fields)
