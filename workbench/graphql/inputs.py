"""Input types generated from a CK model: entity inputs, record inputs, update envelopes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLString,
)

from workbench.ck.model import CkModel, TypeAttribute, ValueType
from workbench.ck.naming import (
    graphql_association_field_name,
    graphql_field_name,
    graphql_input_type_name,
    graphql_record_input_type_name,
    graphql_type_name,
)
from workbench.graphql.scalars import (
    DATETIME,
    GEO_POINT_INPUT,
    LONG,
    MOD_OPTION_ENUM,
    RT_ENTITY_ID_INPUT,
)
from workbench.graphql.types import NameRegistry, OutputTypes

__all__ = ["ASSOCIATION_CHANGE_INPUT", "InputTypes"]

_SCALARS: dict[ValueType, GraphQLInputType] = {
    ValueType.STRING: GraphQLString,
    ValueType.BOOLEAN: GraphQLBoolean,
    ValueType.INT: GraphQLInt,
    ValueType.INT64: LONG,
    ValueType.DOUBLE: GraphQLFloat,
    ValueType.DATETIME: DATETIME,
    ValueType.DATETIME_OFFSET: DATETIME,
    ValueType.TIMESPAN: GraphQLString,
    ValueType.BINARY: GraphQLString,
    ValueType.BINARY_LINKED: GraphQLString,
    ValueType.GEOSPATIAL_POINT: GEO_POINT_INPUT,
    ValueType.STRING_ARRAY: GraphQLList(GraphQLNonNull(GraphQLString)),
    ValueType.INT_ARRAY: GraphQLList(GraphQLNonNull(GraphQLInt)),
}

ASSOCIATION_CHANGE_INPUT = GraphQLInputObjectType(
    "AssociationChangeInput",
    {
        "target": GraphQLInputField(GraphQLNonNull(RT_ENTITY_ID_INPUT)),
        "modOption": GraphQLInputField(MOD_OPTION_ENUM, default_value="CREATE"),
    },
    description="Link to (CREATE) or unlink from (DELETE) the target entity.",
)


class InputTypes:
    """Builds the mutation input types of one model on demand."""

    def __init__(self, model: CkModel, outputs: OutputTypes, names: NameRegistry) -> None:
        self.model = model
        self.outputs = outputs
        self.names = names
        self.records: dict[str, GraphQLInputObjectType] = {}
        self.entities: dict[str, GraphQLInputObjectType] = {}
        self.updates: dict[str, GraphQLInputObjectType] = {}
        #: per type: association input field name -> role id (outbound ends only)
        self.association_fields: dict[str, dict[str, str]] = {}

    def record(self, record_id: str) -> GraphQLInputObjectType:
        if record_id not in self.records:
            record = self.model.record(record_id)
            self.records[record_id] = GraphQLInputObjectType(
                self.names.claim(graphql_record_input_type_name(record_id), f"record {record_id}"),
                lambda: {
                    graphql_field_name(n): GraphQLInputField(self.value_type(a))
                    for n, a in record.attributes.items()
                },
            )
        return self.records[record_id]

    def value_type(self, attribute: TypeAttribute) -> GraphQLInputType:
        value_type = attribute.value_type
        if value_type is ValueType.ENUM:
            assert attribute.attribute.enum_id is not None
            ck_enum = self.model.enum(attribute.attribute.enum_id)
            enum_type = self.outputs.enum(ck_enum.id)
            return GraphQLList(GraphQLNonNull(enum_type)) if ck_enum.use_flags else enum_type
        if value_type in (ValueType.RECORD, ValueType.RECORD_ARRAY):
            assert attribute.attribute.record_id is not None
            record = self.record(attribute.attribute.record_id)
            return record if value_type is ValueType.RECORD else GraphQLList(GraphQLNonNull(record))
        return _SCALARS[value_type]

    def entity(self, type_id: str) -> GraphQLInputObjectType:
        """``<Type>Input``: attributes, ``rtId``/``rtWellKnownName`` and outbound associations."""
        if type_id not in self.entities:
            ck_type = self.model.type(type_id)
            links: dict[str, str] = {}
            for end in self.outputs.ends(type_id):
                if end.direction == "outbound":
                    links.setdefault(graphql_association_field_name(end.name), end.role.id)
            self.association_fields[type_id] = links

            def fields() -> dict[str, GraphQLInputField]:
                out = {
                    "rtId": GraphQLInputField(
                        GraphQLID, description="On create: the id to use (default: generated)."
                    ),
                    "rtWellKnownName": GraphQLInputField(GraphQLString),
                }
                for name, attribute in ck_type.attributes.items():
                    out[graphql_field_name(name)] = GraphQLInputField(self.value_type(attribute))
                for field_name in links:
                    out[field_name] = GraphQLInputField(
                        GraphQLList(GraphQLNonNull(ASSOCIATION_CHANGE_INPUT))
                    )
                return out

            self.entities[type_id] = GraphQLInputObjectType(
                self.names.claim(graphql_input_type_name(type_id), f"type {type_id}"),
                fields,
                description=f"Values of a {type_id}; attributes left out are not changed.",
            )
        return self.entities[type_id]

    def update(self, type_id: str) -> GraphQLInputObjectType:
        """``<Type>UpdateInput``: ``{rtId, rtVersion, item}``."""
        if type_id not in self.updates:
            self.updates[type_id] = GraphQLInputObjectType(
                self.names.claim(
                    f"{graphql_type_name(type_id)}UpdateInput", f"updates of type {type_id}"
                ),
                {
                    "rtId": GraphQLInputField(GraphQLNonNull(GraphQLID)),
                    "rtVersion": GraphQLInputField(
                        GraphQLInt,
                        description="When given, the update fails with CONFLICT unless it is "
                        "the stored version.",
                    ),
                    "item": GraphQLInputField(GraphQLNonNull(self.entity(type_id))),
                },
            )
        return self.updates[type_id]

    def split(
        self, type_id: str, item: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, list[Mapping[str, Any]]]]:
        """An entity input as (attribute values, association changes by role id)."""
        links = self.association_fields.get(type_id, {})
        attributes: dict[str, Any] = {}
        changes: dict[str, list[Mapping[str, Any]]] = {}
        for key, value in item.items():
            if key in ("rtId", "rtWellKnownName"):
                continue
            if key in links:
                changes.setdefault(links[key], []).extend(value or ())
            else:
                attributes[key] = value
        return attributes, changes
