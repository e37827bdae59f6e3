"""The resolved Construction Kit model: libraries, types, attributes, records, enums, roles.

These classes are what the rest of the platform reads. They are produced by
:func:`workbench.ck.resolver.resolve_model` from loaded libraries, after dependency resolution,
inheritance flattening and validation; nothing else should construct a :class:`CkModel` by hand
(tests aside). All ids here are *full* ids: ``Library/Element`` without the version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from workbench.ck.versions import Version, VersionRange, parse_dependency
from workbench.errors import ErrorDetail, NotFound

__all__ = [
    "SCALAR_VALUE_TYPES",
    "AssociationEnd",
    "CkAssociationRole",
    "CkAttribute",
    "CkEnum",
    "CkIndex",
    "CkLibrary",
    "CkModel",
    "CkRecord",
    "CkType",
    "Dependency",
    "EnumValue",
    "IndexType",
    "Migration",
    "MigrationStep",
    "Multiplicity",
    "TypeAssociation",
    "TypeAttribute",
    "ValueType",
]


class ValueType(StrEnum):
    """Value types an attribute may have (CONSTRUCTION_KIT.md, "Attributes")."""

    STRING = "String"
    BOOLEAN = "Boolean"
    INT = "Int"
    INT64 = "Int64"
    DOUBLE = "Double"
    DATETIME = "DateTime"
    DATETIME_OFFSET = "DateTimeOffset"
    TIMESPAN = "TimeSpan"
    ENUM = "Enum"
    RECORD = "Record"
    RECORD_ARRAY = "RecordArray"
    STRING_ARRAY = "StringArray"
    INT_ARRAY = "IntArray"
    BINARY = "Binary"
    BINARY_LINKED = "BinaryLinked"
    GEOSPATIAL_POINT = "GeospatialPoint"


#: Value types that may carry time-stamped stream values.
SCALAR_VALUE_TYPES = frozenset(
    {
        ValueType.STRING,
        ValueType.BOOLEAN,
        ValueType.INT,
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.DATETIME,
        ValueType.DATETIME_OFFSET,
        ValueType.ENUM,
    }
)


class Multiplicity(StrEnum):
    ZERO_OR_ONE = "ZeroOrOne"
    ONE = "One"
    N = "N"


class IndexType(StrEnum):
    ASCENDING = "Ascending"
    TEXT = "Text"
    UNIQUE = "Unique"
    UNIQUE_NOT_DELETED = "UniqueNotDeleted"


@dataclass(frozen=True)
class Dependency:
    """A library dependency such as ``System-[2.0,3.0)``."""

    name: str
    range: VersionRange

    def __str__(self) -> str:
        return f"{self.name}-{self.range}"

    @classmethod
    def parse(cls, text: str) -> Dependency:
        """Parse ``"System-[2.0,3.0)"``; raise :class:`ValidationError` naming the expected form."""
        name, version_range = parse_dependency(text)
        return cls(name, version_range)


@dataclass
class CkAttribute:
    """An attribute declared once in a library and reused by types and records."""

    id: str
    value_type: ValueType
    enum_id: str | None = None
    record_id: str | None = None
    default_values: list[Any] = field(default_factory=list)
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    is_runtime_state: bool = False
    #: a secret (``isSecret``): stored encrypted, masked in every API (workbench.runtime.secrets)
    is_secret: bool = False
    #: the file the element was declared in (for error messages; ignored by ``==``)
    source_file: str | None = field(default=None, compare=False)


@dataclass
class TypeAttribute:
    """The use of an attribute on a type or record, under a name (``State`` for ``MeterState``)."""

    attribute_id: str
    name: str
    attribute: CkAttribute
    declared_on: str
    is_optional: bool = False
    default_values: list[Any] = field(default_factory=list)
    auto_complete_values: list[Any] = field(default_factory=list)
    auto_increment_reference: str | None = None

    @property
    def value_type(self) -> ValueType:
        return self.attribute.value_type

    @property
    def defaults(self) -> list[Any]:
        """The defaults on the type entry, else those on the attribute declaration."""
        return self.default_values or self.attribute.default_values


@dataclass
class TypeAssociation:
    """A type's declaration that its instances may link to instances of ``target_type_id``."""

    role_id: str
    target_type_id: str
    declared_on: str


@dataclass
class CkIndex:
    """An index declared on a type; ``fields`` holds attribute-name paths (``["SerialNumber"]``)."""

    index_type: IndexType
    fields: list[list[str]]
    declared_on: str
    #: stemming language of a Text index (``en``), as written in the library
    language: str | None = None
    #: relevance weight per field (``None`` where not given), parallel to ``fields``
    weights: list[float | None] = field(default_factory=list)


@dataclass
class EnumValue:
    key: int
    name: str
    description: str | None = None


@dataclass
class CkEnum:
    id: str
    values: list[EnumValue]
    is_extensible: bool = False
    use_flags: bool = False
    description: str | None = None
    #: the file the element was declared in (for error messages; ignored by ``==``)
    source_file: str | None = field(default=None, compare=False)

    def by_name(self, name: str) -> EnumValue | None:
        return next((v for v in self.values if v.name.lower() == name.lower()), None)

    def by_key(self, key: int) -> EnumValue | None:
        return next((v for v in self.values if v.key == key), None)


@dataclass
class CkRecord:
    """A structured value type; ``attributes`` is flattened along ``derived_from``."""

    id: str
    own_attributes: list[TypeAttribute]
    derived_from: str | None = None
    description: str | None = None
    attributes: dict[str, TypeAttribute] = field(default_factory=dict)
    #: the file the element was declared in (for error messages; ignored by ``==``)
    source_file: str | None = field(default=None, compare=False)


@dataclass
class CkAssociationRole:
    id: str
    outbound_name: str
    outbound_multiplicity: Multiplicity
    inbound_name: str
    inbound_multiplicity: Multiplicity
    description: str | None = None
    #: the file the element was declared in (for error messages; ignored by ``==``)
    source_file: str | None = field(default=None, compare=False)


@dataclass
class CkType:
    """A type; after resolution ``attributes``/``associations``/``indexes`` include inherited ones.

    ``base_chain`` lists the ancestors from the direct base up to ``System/Entity``;
    ``subtypes`` lists the direct subtypes (use :meth:`CkModel.descendants` for all).
    """

    id: str
    derived_from: str | None
    own_attributes: list[TypeAttribute]
    own_associations: list[TypeAssociation]
    own_indexes: list[CkIndex]
    is_abstract: bool = False
    is_final: bool = False
    description: str | None = None
    attributes: dict[str, TypeAttribute] = field(default_factory=dict)
    associations: list[TypeAssociation] = field(default_factory=list)
    indexes: list[CkIndex] = field(default_factory=list)
    base_chain: list[str] = field(default_factory=list)
    subtypes: list[str] = field(default_factory=list)
    #: the file the element was declared in (for error messages; ignored by ``==``)
    source_file: str | None = field(default=None, compare=False)

    @property
    def library(self) -> str:
        return self.id.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[1]

    def attribute(self, name: str) -> TypeAttribute:
        """The attribute called ``name`` (case-insensitive on the first letter, as in GraphQL)."""
        found = self.attributes.get(name) or _find_case_insensitive(self.attributes, name)
        if found is None:
            known = ", ".join(sorted(self.attributes)) or "none"
            raise NotFound(f"type {self.id} has no attribute {name!r}; its attributes are: {known}")
        return found

    def attribute_by_id(self, attribute_id: str) -> TypeAttribute | None:
        """The type's use of the attribute with full id ``attribute_id`` (runtime files use ids)."""
        return next((a for a in self.attributes.values() if a.attribute_id == attribute_id), None)


def _find_case_insensitive(items: dict[str, TypeAttribute], name: str) -> TypeAttribute | None:
    lowered = name.lower()
    return next((a for key, a in items.items() if key.lower() == lowered), None)


@dataclass
class MigrationStep:
    """One action of a migration script (``RenameAttribute``, ``SetValue``, ...)."""

    action: str
    params: dict[str, Any]


@dataclass
class Migration:
    from_version: Version
    to_version: Version
    steps: list[MigrationStep]
    breaking: bool = False
    script_path: str | None = None


@dataclass
class CkLibrary:
    """One versioned library as loaded from YAML (element ids already made full).

    Before resolution, a type's or record's attribute entries point at this library's own
    :class:`CkAttribute` when declared here, and at a stand-in (value type String) when declared
    in another library; read attributes from the resolved :class:`CkModel` instead.
    """

    name: str
    version: Version
    dependencies: list[Dependency] = field(default_factory=list)
    description: str | None = None
    attributes: dict[str, CkAttribute] = field(default_factory=dict)
    types: dict[str, CkType] = field(default_factory=dict)
    records: dict[str, CkRecord] = field(default_factory=dict)
    enums: dict[str, CkEnum] = field(default_factory=dict)
    roles: dict[str, CkAssociationRole] = field(default_factory=dict)
    migrations: list[Migration] = field(default_factory=list)
    source: Path | None = field(default=None, compare=False)
    #: the library in compiled form with the original reference strings (``dump_library``), kept
    #: to store and export the library verbatim; loading it again gives an equal library
    raw: dict[str, Any] = field(default_factory=dict)
    #: what the loader accepted but reported (unknown keys, a missing version), file and element
    warnings: list[ErrorDetail] = field(default_factory=list, compare=False)
    #: libraries this one references: name -> (file, element) of the first reference; the
    #: resolver checks that each lies in the dependency closure
    referenced_libraries: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False)

    @property
    def model_id(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True)
class AssociationEnd:
    """A role seen from one end.

    From a source (``direction == "outbound"``) the role is navigated by the role's outbound name
    and leads to ``other_type_id`` (the declared target type); from a target (``"inbound"``) by the
    inbound name and leads back to the declaring type.
    """

    role: CkAssociationRole
    direction: Literal["outbound", "inbound"]
    name: str
    multiplicity: Multiplicity
    source_type_id: str
    target_type_id: str

    @property
    def other_type_id(self) -> str:
        return self.target_type_id if self.direction == "outbound" else self.source_type_id


@dataclass
class CkModel:
    """A tenant's resolved model: every element of every library, by full id."""

    libraries: dict[str, CkLibrary] = field(default_factory=dict)
    types: dict[str, CkType] = field(default_factory=dict)
    attributes: dict[str, CkAttribute] = field(default_factory=dict)
    records: dict[str, CkRecord] = field(default_factory=dict)
    enums: dict[str, CkEnum] = field(default_factory=dict)
    roles: dict[str, CkAssociationRole] = field(default_factory=dict)

    def type(self, type_id: str) -> CkType:
        try:
            return self.types[type_id]
        except KeyError:
            raise NotFound(
                f"construction kit type {type_id!r} is not in this tenant's model; "
                "import the library that defines it (workbench ck import) or check the spelling"
            ) from None

    def record(self, record_id: str) -> CkRecord:
        try:
            return self.records[record_id]
        except KeyError:
            raise NotFound(f"construction kit record {record_id!r} is not in the model") from None

    def enum(self, enum_id: str) -> CkEnum:
        try:
            return self.enums[enum_id]
        except KeyError:
            raise NotFound(f"construction kit enum {enum_id!r} is not in the model") from None

    def role(self, role_id: str) -> CkAssociationRole:
        try:
            return self.roles[role_id]
        except KeyError:
            raise NotFound(f"association role {role_id!r} is not in the model") from None

    def descendants(self, type_id: str) -> list[str]:
        """All subtypes of ``type_id``, transitively, not including itself (breadth first)."""
        out: list[str] = []
        queue = list(self.type(type_id).subtypes)
        while queue:
            current = queue.pop(0)
            out.append(current)
            queue.extend(self.types[current].subtypes)
        return out

    def type_and_descendants(self, type_id: str) -> list[str]:
        return [type_id, *self.descendants(type_id)]

    def is_a(self, type_id: str, base_id: str) -> bool:
        """True when ``type_id`` is ``base_id`` or derives from it."""
        return type_id == base_id or base_id in self.type(type_id).base_chain

    def concrete_types(self) -> Iterator[CkType]:
        return (t for t in self.types.values() if not t.is_abstract)

    def outbound_ends(self, type_id: str) -> list[AssociationEnd]:
        """Roles navigable from instances of ``type_id`` as sources (own and inherited).

        An end every entity has through ``System/Entity`` (``System/Related``) whose name a
        library role of the type also uses (published kits declare ``RelatesTo``/``RelatesFrom``
        too) is renamed ``System<Name>``: the library's end keeps the plain name.
        """
        return _shadow_system_ends(self._outbound_ends(type_id), self._inbound_ends(type_id))

    def inbound_ends(self, type_id: str) -> list[AssociationEnd]:
        """Roles through which instances of ``type_id`` (or a base) can be targets.

        Names are made unique against System roles as in :meth:`outbound_ends`.
        """
        return _shadow_system_ends(self._inbound_ends(type_id), self._outbound_ends(type_id))

    def _outbound_ends(self, type_id: str) -> list[AssociationEnd]:
        return [
            self._end(assoc, "outbound", assoc.declared_on)
            for assoc in self.type(type_id).associations
        ]

    def _inbound_ends(self, type_id: str) -> list[AssociationEnd]:
        accepted = {type_id, *self.type(type_id).base_chain}
        return [
            self._end(assoc, "inbound", source.id)
            for source in self.types.values()
            for assoc in source.own_associations
            if assoc.target_type_id in accepted
        ]

    def _end(
        self,
        assoc: TypeAssociation,
        direction: Literal["outbound", "inbound"],
        source_type_id: str,
    ) -> AssociationEnd:
        role = self.roles[assoc.role_id]
        outbound = direction == "outbound"
        return AssociationEnd(
            role=role,
            direction=direction,
            name=role.outbound_name if outbound else role.inbound_name,
            multiplicity=role.outbound_multiplicity if outbound else role.inbound_multiplicity,
            source_type_id=source_type_id,
            target_type_id=assoc.target_type_id,
        )

    def end(self, type_id: str, name: str) -> AssociationEnd:
        """The association end called ``name`` (outbound or inbound) on ``type_id``."""
        for candidate in (*self.outbound_ends(type_id), *self.inbound_ends(type_id)):
            if candidate.name.lower() == name.lower():
                return candidate
        names = sorted(
            {e.name for e in (*self.outbound_ends(type_id), *self.inbound_ends(type_id))}
        )
        raise NotFound(
            f"type {type_id} has no association {name!r}; navigable names: "
            f"{', '.join(names) or 'none'}"
        )


def _shadow_system_ends(
    ends: list[AssociationEnd], other_ends: list[AssociationEnd]
) -> list[AssociationEnd]:
    """``ends`` with built-in ends (System roles declared on System types, such as
    ``System/Related`` on ``System/Entity``) renamed where a library's end has the same name."""
    library_names = {e.name.lower() for e in (*ends, *other_ends) if not _built_in(e)}
    return [
        replace(end, name=f"System{end.name}")
        if _built_in(end) and end.name.lower() in library_names
        else end
        for end in ends
    ]


def _built_in(end: AssociationEnd) -> bool:
    return end.role.id.startswith("System/") and end.source_type_id.startswith("System/")
