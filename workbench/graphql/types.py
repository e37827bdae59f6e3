"""Output types generated from a CK model: enums, records, entity interfaces and objects,
connections.

A CK type that is abstract or has subtypes becomes a GraphQL *interface* named after it, so a
query on it returns its subtypes and ``... on`` fragments select subtype fields; concrete types
become object types implementing the interfaces of all their ancestors. A concrete type that also
has subtypes gets both: the interface under its name and an object type ``<Name>Instance`` for
entities of exactly that type.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
)

from workbench.ck.model import (
    AssociationEnd,
    CkModel,
    CkType,
    Multiplicity,
    TypeAttribute,
    ValueType,
)
from workbench.ck.naming import (
    graphql_association_field_name,
    graphql_enum_type_name,
    graphql_enum_value_name,
    graphql_field_name,
    graphql_object_type_names,
    graphql_record_type_name,
    graphql_type_name,
)
from workbench.errors import ModelError
from workbench.graphql.aggregations import aggregation_fields
from workbench.graphql.context import Info
from workbench.graphql.resolvers import AssociationField, association_resolver
from workbench.graphql.scalars import DATETIME, GEO_POINT, LONG, PAGE_INFO, list_args
from workbench.graphql.sources import SourceFactory

__all__ = ["NameRegistry", "OutputTypes", "common_base"]

_SCALARS: dict[ValueType, GraphQLOutputType] = {
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
    ValueType.GEOSPATIAL_POINT: GEO_POINT,
    ValueType.STRING_ARRAY: GraphQLList(GraphQLNonNull(GraphQLString)),
    ValueType.INT_ARRAY: GraphQLList(GraphQLNonNull(GraphQLInt)),
}


class NameRegistry:
    """Every GraphQL type name of one schema with what produced it; a second producer of the
    same name is a :class:`ModelError` (CK import rejects most clashes earlier)."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def claim(self, name: str, owner: str) -> str:
        previous = self._owners.setdefault(name, owner)
        if previous != owner:
            raise ModelError(
                f"GraphQL name clash: {owner} and {previous} both need the type name {name!r}; "
                "rename one of the model elements"
            )
        return name


def common_base(model: CkModel, type_ids: list[str]) -> str:
    """The most derived type that every one of ``type_ids`` is (``System/Entity`` at worst)."""
    chains = [[t, *model.types[t].base_chain] for t in type_ids]
    others = [set(chain) for chain in chains[1:]]
    return next((t for t in chains[0] if all(t in c for c in others)), "System/Entity")


def _system_fields() -> dict[str, GraphQLField]:
    return {
        "rtId": GraphQLField(GraphQLNonNull(GraphQLID)),
        "ckTypeId": GraphQLField(GraphQLNonNull(GraphQLString)),
        "rtWellKnownName": GraphQLField(GraphQLString),
        "rtVersion": GraphQLField(
            GraphQLNonNull(GraphQLInt), description="Incremented on each change."
        ),
        "rtCreationDateTime": GraphQLField(GraphQLNonNull(DATETIME)),
        "rtChangedDateTime": GraphQLField(GraphQLNonNull(DATETIME)),
    }


class OutputTypes:
    """Builds and holds the output types of one model (fields are thunks: built on first use)."""

    def __init__(self, model: CkModel, names: NameRegistry) -> None:
        self.model = model
        self.names = names
        self.enums: dict[str, GraphQLEnumType] = {}
        self.records: dict[str, GraphQLObjectType] = {}
        #: the type a field of CK type T returns: its interface, or its object type
        self.entities: dict[str, GraphQLInterfaceType | GraphQLObjectType] = {}
        #: object types of concrete CK types
        self.objects: dict[str, GraphQLObjectType] = {}
        #: GraphQL object type name of each concrete CK type (for resolve_type)
        self.object_names: dict[str, str] = {}
        self.connections: dict[str, GraphQLObjectType] = {}
        self._ends: dict[str, list[AssociationEnd]] | None = None
        self._field_types: dict[tuple[str, str], str] = {}
        self.sources = SourceFactory(model)
        self._object_type_names = graphql_object_type_names(model)
        for enum_id in model.enums:
            self.enum(enum_id)
        for record_id in model.records:
            self.record(record_id)
        for type_id in model.types:
            self.entity(type_id)

    # ---- enums and records -------------------------------------------------------------------

    def enum(self, enum_id: str) -> GraphQLEnumType:
        if enum_id not in self.enums:
            ck_enum = self.model.enum(enum_id)
            enum_name = graphql_enum_type_name(enum_id, self._object_type_names)
            name = self.names.claim(enum_name, f"enum {enum_id}")
            self.enums[enum_id] = GraphQLEnumType(
                name,
                {
                    graphql_enum_value_name(v.name): GraphQLEnumValue(v.name, v.description)
                    for v in ck_enum.values
                },
                description=ck_enum.description,
            )
        return self.enums[enum_id]

    def record(self, record_id: str) -> GraphQLObjectType:
        if record_id not in self.records:
            record = self.model.record(record_id)
            name = self.names.claim(graphql_record_type_name(record_id), f"record {record_id}")
            self.records[record_id] = GraphQLObjectType(
                name,
                lambda: {
                    graphql_field_name(n): self._attribute_field(a)
                    for n, a in record.attributes.items()
                },
                description=record.description,
            )
        return self.records[record_id]

    def value_type(self, attribute: TypeAttribute) -> GraphQLOutputType:
        value_type = attribute.value_type
        if value_type is ValueType.ENUM:
            assert attribute.attribute.enum_id is not None
            ck_enum = self.model.enum(attribute.attribute.enum_id)
            enum_type = self.enum(ck_enum.id)
            return GraphQLList(GraphQLNonNull(enum_type)) if ck_enum.use_flags else enum_type
        if value_type is ValueType.RECORD:
            assert attribute.attribute.record_id is not None
            return self.record(attribute.attribute.record_id)
        if value_type is ValueType.RECORD_ARRAY:
            assert attribute.attribute.record_id is not None
            return GraphQLList(GraphQLNonNull(self.record(attribute.attribute.record_id)))
        return _SCALARS[value_type]

    def _attribute_field(self, attribute: TypeAttribute) -> GraphQLField:
        return GraphQLField(self.value_type(attribute), description=attribute.attribute.description)

    # ---- entities ----------------------------------------------------------------------------

    def is_interface(self, ck_type: CkType) -> bool:
        return ck_type.is_abstract or bool(ck_type.subtypes)

    def entity(self, type_id: str) -> GraphQLInterfaceType | GraphQLObjectType:
        if type_id in self.entities:
            return self.entities[type_id]
        ck_type = self.model.type(type_id)
        name = graphql_type_name(type_id)
        interfaces = [self._interface(base) for base in ck_type.base_chain]
        if self.is_interface(ck_type):
            interface = GraphQLInterfaceType(
                self.names.claim(name, f"type {type_id}"),
                lambda: self._entity_fields(ck_type),
                resolve_type=self._resolve_type,
                interfaces=list(reversed(interfaces)),
                description=ck_type.description,
            )
            self.entities[type_id] = interface
            interfaces.insert(0, interface)
            if ck_type.is_abstract:
                return interface
            name = f"{name}Instance"
        obj = GraphQLObjectType(
            self.names.claim(name, f"type {type_id}"),
            lambda: self._entity_fields(ck_type),
            interfaces=list(reversed(interfaces)),
            description=(
                ck_type.description
                if type_id not in self.entities
                else f"Entities of exactly {type_id} (not of its subtypes)."
            ),
        )
        self.objects[type_id] = obj
        self.object_names[type_id] = obj.name
        self.entities.setdefault(type_id, obj)
        return self.entities[type_id]

    def _interface(self, type_id: str) -> GraphQLInterfaceType:
        found = self.entity(type_id)
        assert isinstance(found, GraphQLInterfaceType)
        return found

    def _resolve_type(self, value: Any, _info: Info, _abstract: Any) -> str | None:
        return self.object_names.get(value["ckTypeId"])

    def ends(self, type_id: str) -> list[AssociationEnd]:
        if self._ends is None:
            self._ends = {
                t: [*self.model.outbound_ends(t), *self.model.inbound_ends(t)]
                for t in self.model.types
            }
        return self._ends[type_id]

    def association_target(self, type_id: str, field_name: str) -> str:
        """The CK type an association field returns: the common base of every type reachable by
        that field from the topmost type declaring it and from all that type's subtypes, so
        interface and implementing fields agree."""
        chain = [*reversed(self.model.types[type_id].base_chain), type_id]
        top = next(
            t
            for t in chain
            if any(graphql_association_field_name(e.name) == field_name for e in self.ends(t))
        )
        key = (top, field_name)
        if key not in self._field_types:
            targets = sorted(
                {
                    e.other_type_id
                    for t in self.model.type_and_descendants(top)
                    for e in self.ends(t)
                    if graphql_association_field_name(e.name) == field_name
                }
            )
            self._field_types[key] = common_base(self.model, targets)
        return self._field_types[key]

    def connection(self, type_id: str) -> GraphQLObjectType:
        if type_id not in self.connections:
            base = graphql_type_name(type_id)
            node = self.entity(type_id)
            edge = GraphQLObjectType(
                self.names.claim(f"{base}Edge", f"edges of {type_id}"),
                {
                    "cursor": GraphQLField(GraphQLNonNull(GraphQLString)),
                    "node": GraphQLField(GraphQLNonNull(node)),
                },
            )
            self.connections[type_id] = GraphQLObjectType(
                self.names.claim(f"{base}Connection", f"lists of {type_id}"),
                {
                    "totalCount": GraphQLField(
                        GraphQLInt, description="All matches (computed only when selected)."
                    ),
                    "pageInfo": GraphQLField(GraphQLNonNull(PAGE_INFO)),
                    "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(node)))),
                    "edges": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(edge)))),
                    **aggregation_fields(),
                },
            )
        return self.connections[type_id]

    def _entity_fields(self, ck_type: CkType) -> dict[str, GraphQLField]:
        fields = _system_fields()
        for name, attribute in ck_type.attributes.items():
            fields[graphql_field_name(name)] = self._attribute_field(attribute)
        seen: set[str] = set()
        for end in self.ends(ck_type.id):
            field_name = graphql_association_field_name(end.name)
            if field_name in seen:
                continue
            seen.add(field_name)
            target = self.association_target(ck_type.id, field_name)
            many = end.multiplicity is Multiplicity.N
            resolver = association_resolver(
                AssociationField(field_name, end.role.id, end.direction, target, many),
                self.sources,
            )
            description = f"{end.direction.capitalize()} end of {end.role.id}" + (
                f": {end.role.description}" if end.role.description else ""
            )
            if many:
                args: dict[str, GraphQLArgument] = list_args()
                fields[field_name] = GraphQLField(
                    GraphQLNonNull(self.connection(target)), args, resolver, description=description
                )
            else:
                fields[field_name] = GraphQLField(
                    self.entity(target), resolve=resolver, description=description
                )
        return fields

    def named_types(self) -> list[GraphQLNamedType]:
        """Every generated type (object types reached only through interfaces included)."""
        return [*self.enums.values(), *self.records.values(), *self.objects.values()]
