"""Runtime mutations: typed ``create``/``update``/``delete`` per CK type and the generic
``runtimeEntities { delete }``. Each call is one atomic batch of the entity service; entity
events go to the context's bus after the batch is written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
)

from workbench.ck.naming import graphql_mutation_field_name, graphql_type_name
from workbench.errors import ErrorDetail, NotFound, ValidationError
from workbench.graphql.batching import entity_sources
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.inputs import InputTypes
from workbench.graphql.scalars import DELETE_OPTION_ENUM, RT_ENTITY_ID_INPUT
from workbench.graphql.types import NameRegistry, OutputTypes
from workbench.messaging.base import EntityEvent, UpdateType, entity_topic
from workbench.runtime.entity import AssociationInput, Entity, EntityInput, EntityUpdate

__all__ = ["build_runtime_mutation", "publish_entity_events"]

Resolver = Callable[..., Any]


def publish_entity_events(
    context: GraphQLContext, update_type: UpdateType, entities: Iterable[Entity | Mapping[str, Any]]
) -> None:
    """Send one :class:`EntityEvent` per entity to the context's bus (if any)."""
    bus = context.bus
    if bus is None:
        return
    topic = entity_topic(context.tenant.id)
    for entity in entities:
        data = entity.to_dict() if isinstance(entity, Entity) else dict(entity)
        bus.publish(
            topic,
            EntityEvent(context.tenant.id, update_type, data["rtId"], data["ckTypeId"], data),
        )


def _association_inputs(
    changes: Mapping[str, list[Mapping[str, Any]]], location: str, *, allow_delete: bool
) -> tuple[list[AssociationInput], list[AssociationInput]]:
    add: list[AssociationInput] = []
    remove: list[AssociationInput] = []
    for role_id, items in changes.items():
        for item in items:
            target = item["target"]
            link = AssociationInput(role_id, target["rtId"], target.get("ckTypeId"))
            if item.get("modOption", "CREATE") == "DELETE":
                if not allow_delete:
                    raise ValidationError(
                        f"{location}: modOption DELETE needs an existing entity; a new entity "
                        "has no links to remove (use CREATE, or DELETE in an update)"
                    )
                remove.append(link)
            else:
                add.append(link)
    return add, remove


def _check_types(
    context: GraphQLContext, type_id: str, items: Sequence[Mapping[str, Any]], what: str
) -> dict[str, str]:
    """rtId -> ckTypeId of the entities; NotFound/ValidationError when missing or mistyped."""
    model = context.tenant.model
    ids = [str(item["rtId"]) for item in items]
    found = context.entities.entity_types(ids)
    missing = [i for i in ids if i.lower() not in found]
    if missing:
        raise NotFound(
            f"cannot {what} {', '.join(missing)}: no such runtime entity in this tenant "
            "(or it is archived); check the rtIds"
        )
    errors = []
    for index, item in enumerate(items):
        actual = found[str(item["rtId"]).lower()]
        expected = item.get("ckTypeId") or type_id
        if not model.is_a(actual, expected):
            errors.append(
                ErrorDetail(
                    f"{item['rtId']} is a {actual}, not a {expected}; use the mutation of "
                    f"{actual} or runtimeEntities",
                    f"entities[{index}]",
                )
            )
    if errors:
        raise ValidationError(
            f"nothing was changed: {len(errors)} entities have another type", errors
        )
    return found


def _create_resolver(type_id: str, inputs: InputTypes) -> Resolver:
    def resolve(_root: Any, info: Info, entities: list[dict[str, Any]]) -> Any:
        context: GraphQLContext = info.context
        creates = []
        for index, item in enumerate(entities):
            attributes, changes = inputs.split(type_id, item)
            add, _ = _association_inputs(changes, f"entities[{index}]", allow_delete=False)
            creates.append(
                EntityInput(type_id, attributes, item.get("rtId"), item.get("rtWellKnownName"), add)
            )
        created = context.entities.apply(creates=creates)
        publish_entity_events(context, UpdateType.INSERT, created)
        return entity_sources(created)

    return resolve


def _update_resolver(type_id: str, inputs: InputTypes) -> Resolver:
    def resolve(_root: Any, info: Info, entities: list[dict[str, Any]]) -> Any:
        context: GraphQLContext = info.context
        _check_types(context, type_id, entities, "update")
        updates = []
        for index, envelope in enumerate(entities):
            item = envelope["item"]
            attributes, changes = inputs.split(type_id, item)
            add, remove = _association_inputs(changes, f"entities[{index}]", allow_delete=True)
            updates.append(
                EntityUpdate(
                    str(envelope["rtId"]),
                    attributes,
                    envelope.get("rtVersion"),
                    item.get("rtWellKnownName"),
                    add,
                    remove,
                )
            )
        updated = context.entities.apply(updates=updates)
        publish_entity_events(context, UpdateType.UPDATE, updated)
        return entity_sources(updated)

    return resolve


def _delete_resolver(type_id: str) -> Resolver:
    def resolve(
        _root: Any,
        info: Info,
        entities: list[dict[str, Any]],
        options: str = "ARCHIVE",
        cascade: bool = False,
    ) -> list[str]:
        context: GraphQLContext = info.context
        erase = options == "ERASE"
        _check_types(context, type_id, entities, "delete")
        ids = [str(item["rtId"]) for item in entities]
        before = context.entities.get_many(ids, include_archived=erase)
        deleted = context.entities.delete(ids, erase=erase, cascade=cascade)
        extra = [i for i in deleted if i not in before]
        if extra:
            before.update(context.entities.get_many(extra, include_archived=True))
        publish_entity_events(
            context, UpdateType.DELETE, [before[i] for i in deleted if i in before]
        )
        return deleted

    return resolve


def _delete_field(type_id: str) -> GraphQLField:
    return GraphQLField(
        GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLID))),
        {
            "entities": GraphQLArgument(
                GraphQLNonNull(GraphQLList(GraphQLNonNull(RT_ENTITY_ID_INPUT)))
            ),
            "options": GraphQLArgument(DELETE_OPTION_ENUM, default_value="ARCHIVE"),
            "cascade": GraphQLArgument(
                GraphQLBoolean,
                default_value=False,
                description="Also delete entities that need a deleted one (required associations).",
            ),
        },
        _delete_resolver(type_id),
        description="Delete entities; returns every rtId deleted (cascade included).",
    )


def _placeholder(_root: Any, _info: Info) -> dict[str, Any]:
    return {}


def build_runtime_mutation(
    outputs: OutputTypes, inputs: InputTypes, names: NameRegistry
) -> GraphQLObjectType:
    """``mutation { runtime { <types>s { create update delete } runtimeEntities { delete } } }``."""
    fields: dict[str, GraphQLField] = {}
    for ck_type in outputs.model.types.values():
        if ck_type.is_abstract:
            continue
        type_id = ck_type.id
        entity = outputs.entity(type_id)
        result = GraphQLNonNull(GraphQLList(GraphQLNonNull(entity)))
        mutations = GraphQLObjectType(
            names.claim(f"{graphql_type_name(type_id)}Mutations", f"mutations of {type_id}"),
            lambda type_id=type_id, result=result: {  # type: ignore[misc]
                "create": GraphQLField(
                    result,
                    {
                        "entities": GraphQLArgument(
                            GraphQLNonNull(GraphQLList(GraphQLNonNull(inputs.entity(type_id))))
                        )
                    },
                    _create_resolver(type_id, inputs),
                    description="Create entities in one atomic batch (all or nothing).",
                ),
                "update": GraphQLField(
                    result,
                    {
                        "entities": GraphQLArgument(
                            GraphQLNonNull(GraphQLList(GraphQLNonNull(inputs.update(type_id))))
                        )
                    },
                    _update_resolver(type_id, inputs),
                    description="Update entities in one atomic batch; stale rtVersion: CONFLICT.",
                ),
                "delete": _delete_field(type_id),
            },
        )
        inputs.entity(type_id)
        fields[graphql_mutation_field_name(type_id)] = GraphQLField(
            GraphQLNonNull(mutations), resolve=_placeholder
        )
    generic = GraphQLObjectType(
        names.claim("RuntimeEntitiesMutations", "generic runtime mutations"),
        {"delete": _delete_field("System/Entity")},
    )
    fields["runtimeEntities"] = GraphQLField(GraphQLNonNull(generic), resolve=_placeholder)
    return GraphQLObjectType(names.claim("RuntimeMutation", "runtime mutations"), fields)
