"""Checks of a merged, flattened model: references, kinds, finality, names and GraphQL clashes.

:func:`validate_model` adds one :class:`ErrorDetail` per problem (file, element, reason) to the
collector; :func:`workbench.ck.resolver.resolve_model` raises them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workbench.ck.model import CkEnum, CkModel, CkRecord, CkType, TypeAttribute, ValueType
from workbench.ck.naming import (
    SYSTEM_FIELD_NAMES,
    graphql_enum_type_name,
    graphql_enum_value_name,
    graphql_field_name,
    graphql_input_type_name,
    graphql_object_type_names,
    graphql_record_input_type_name,
    graphql_record_type_name,
    graphql_type_name,
    is_valid_graphql_name,
)
from workbench.errors import ErrorCollector

__all__ = ["validate_model"]

_RECORD_TYPES = (ValueType.RECORD, ValueType.RECORD_ARRAY)
_RESERVED_ENUM_VALUES = {"TRUE", "FALSE", "NULL"}


def validate_model(model: CkModel, errors: ErrorCollector) -> None:
    """Add every problem of ``model`` to ``errors`` (nothing is raised here)."""
    checker = _Checker(model, errors)
    checker.references()
    checker.inheritance()
    checker.attribute_names()
    checker.indexes()
    checker.graphql_type_names()
    if checker.roles_known():
        checker.graphql_fields()
    checker.enum_values()


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


@dataclass
class _Checker:
    model: CkModel
    errors: ErrorCollector

    def _collections(self) -> dict[str, Mapping[str, object]]:
        return {
            "type": self.model.types,
            "record": self.model.records,
            "enum": self.model.enums,
            "attribute": self.model.attributes,
            "association role": self.model.roles,
        }

    def _kind(self, element_id: str) -> str | None:
        kinds = self._collections().items()
        return next((kind for kind, items in kinds if element_id in items), None)

    def _expect(
        self, element_id: str, kind: str, key: str, source: str | None, element: str
    ) -> bool:
        """Report ``element_id`` unless it names an element of ``kind``; True when it does."""
        collections = self._collections()
        if element_id in collections[kind]:
            return True
        actual = self._kind(element_id)
        if actual is None:
            library = element_id.rpartition("/")[0]
            hint = (
                f"; no library {library} is in the model, import it first"
                if library not in self.model.libraries
                else f"; {library} declares no {kind} of that id"
            )
            self.errors.add(f"{key} refers to unknown {kind} {element_id}{hint}", source, element)
        else:
            self.errors.add(
                f"{key} {element_id} is {_article(actual)} {actual}, not {_article(kind)} {kind}",
                source,
                element,
            )
        return False

    # -- references ----------------------------------------------------------------------------

    def references(self) -> None:
        for attribute in self.model.attributes.values():
            where, element = attribute.source_file, attribute.id
            if attribute.enum_id is not None:
                self._expect(attribute.enum_id, "enum", "valueCkEnumId", where, element)
            if attribute.record_id is not None:
                self._expect(attribute.record_id, "record", "valueCkRecordId", where, element)
        for record in self.model.records.values():
            if record.derived_from is not None:
                self._expect(
                    record.derived_from,
                    "record",
                    "derivedFromCkRecordId",
                    record.source_file,
                    record.id,
                )
            self._members(record.own_attributes, record.source_file, record.id)
        for ck_type in self.model.types.values():
            where, element = ck_type.source_file, ck_type.id
            if ck_type.derived_from is not None and self._expect(
                ck_type.derived_from, "type", "derivedFromCkTypeId", where, element
            ):
                base = self.model.types[ck_type.derived_from]
                if base.is_final:
                    self.errors.add(
                        f"derives from {base.id}, which is final (isFinal: true) and may have no "
                        "subtypes; derive from another type or make the base non-final",
                        where,
                        element,
                    )
            self._members(ck_type.own_attributes, where, element)
            for association in ck_type.own_associations:
                self._expect(
                    association.role_id, "association role", "association id", where, element
                )
                self._expect(
                    association.target_type_id,
                    "type",
                    f"association {association.role_id} targetCkTypeId",
                    where,
                    element,
                )

    def _members(self, members: Iterable[TypeAttribute], where: str | None, element: str) -> None:
        for member in members:
            self._expect(
                member.attribute_id, "attribute", f"attribute {member.name!r} id", where, element
            )

    def inheritance(self) -> None:
        """Abstract types must not be final (they could never have an instance)."""
        for ck_type in self.model.types.values():
            if ck_type.is_abstract and ck_type.is_final:
                self.errors.add(
                    "a type cannot be both abstract and final: it could have no instances",
                    ck_type.source_file,
                    ck_type.id,
                )

    # -- names ---------------------------------------------------------------------------------

    def attribute_names(self) -> None:
        """An attribute name may be declared once along an inheritance chain (case-insensitive)."""
        for ck_type in self.model.types.values():
            lineage = [self.model.types[t] for t in reversed(ck_type.base_chain)]
            self._own_names(
                [m for ancestor in lineage for m in ancestor.own_attributes],
                ck_type.own_attributes,
                ck_type.source_file,
                ck_type.id,
                "type",
            )
        for record in self.model.records.values():
            inherited = [m for m in record.attributes.values() if m.declared_on != record.id]
            self._own_names(
                inherited, record.own_attributes, record.source_file, record.id, "record"
            )

    def _own_names(
        self,
        inherited: Sequence[TypeAttribute],
        own: Sequence[TypeAttribute],
        where: str | None,
        element: str,
        what: str,
    ) -> None:
        seen = {m.name.lower(): m for m in inherited}
        for member in own:
            if not is_valid_graphql_name(member.name):
                self.errors.add(
                    f"attribute name {member.name!r} is not a valid GraphQL name; use letters, "
                    "digits and '_' and start with a letter",
                    where,
                    element,
                )
            earlier = seen.get(member.name.lower())
            if earlier is not None:
                place = (
                    "on this " + what
                    if earlier.declared_on == element
                    else (f"on {earlier.declared_on}")
                )
                self.errors.add(
                    f"attribute name {member.name!r} is declared twice along the inheritance "
                    f"chain (already as {earlier.name!r} {place}); names are case-insensitive "
                    "because GraphQL lower-cases the first letter, rename one",
                    where,
                    element,
                )
            seen[member.name.lower()] = member

    def indexes(self) -> None:
        for ck_type in self.model.types.values():
            for index in ck_type.own_indexes:
                for paths in index.fields:
                    for path in paths:
                        problem = self._path_problem(ck_type, path)
                        if problem:
                            self.errors.add(
                                f"{index.index_type.value} index path {path!r}: {problem}",
                                ck_type.source_file,
                                ck_type.id,
                            )

    def _path_problem(self, ck_type: CkType, path: str) -> str | None:
        members = ck_type.attributes
        owner = f"type {ck_type.id}"
        for position, part in enumerate(path.split(".")):
            member = next((m for n, m in members.items() if n.lower() == part.lower()), None)
            if member is None:
                known = ", ".join(sorted(members)) or "none"
                return f"{owner} has no attribute {part!r}; its attributes are: {known}"
            if position < len(path.split(".")) - 1:
                record_id = member.attribute.record_id
                if member.value_type not in _RECORD_TYPES or record_id not in self.model.records:
                    return f"attribute {part!r} is not a record, so the path cannot continue"
                members = self.model.records[record_id].attributes
                owner = f"record {record_id}"
        return None

    def graphql_type_names(self) -> None:
        """Types, enums and records must produce distinct, valid GraphQL type names."""
        producers: dict[str, list[tuple[str, str, str | None]]] = {}

        def add(name: str, what: str, element: CkType | CkEnum | CkRecord) -> None:
            producers.setdefault(name, []).append((what, element.id, element.source_file))

        for ck_type in self.model.types.values():
            add(graphql_type_name(ck_type.id), "type", ck_type)
            add(graphql_input_type_name(ck_type.id), "input type of type", ck_type)
        taken = graphql_object_type_names(self.model)
        for enum in self.model.enums.values():
            add(graphql_enum_type_name(enum.id, taken), "enum", enum)
        for record in self.model.records.values():
            add(graphql_record_type_name(record.id), "record", record)
            add(graphql_record_input_type_name(record.id), "input type of record", record)
        for name, users in producers.items():
            first_what, first, _ = users[0]
            if not is_valid_graphql_name(name):
                self.errors.add(
                    f"{first_what} id gives {name!r}, which is not a valid GraphQL "
                    "name; start the id with a letter",
                    users[0][2],
                    first,
                )
            for what, element, where in users[1:]:
                self.errors.add(
                    f"GraphQL name clash: {what} {element} and {first_what} {first} both become "
                    f"GraphQL type {name!r}; rename one of them",
                    where,
                    element,
                )

    def roles_known(self) -> bool:
        """True when every association names a known role (needed to list association ends)."""
        return all(
            association.role_id in self.model.roles
            for ck_type in self.model.types.values()
            for association in ck_type.own_associations
        )

    def graphql_fields(self) -> None:
        """Attribute fields, association fields and system fields of a type must not collide."""
        reported: set[tuple[str, frozenset[str]]] = set()
        for ck_type in sorted(self.model.types.values(), key=lambda t: len(t.base_chain)):
            fields: dict[str, set[str]] = {}
            for name, member in ck_type.attributes.items():
                fields.setdefault(graphql_field_name(name), set()).add(
                    f"attribute {name!r} (on {member.declared_on})"
                )
            ends = [*self.model.outbound_ends(ck_type.id), *self.model.inbound_ends(ck_type.id)]
            for end in ends:
                if not is_valid_graphql_name(graphql_field_name(end.name)):
                    self.errors.add(
                        f"{end.direction} name {end.name!r} of role {end.role.id} is "
                        "not a valid GraphQL name",
                        end.role.source_file,
                        end.role.id,
                    )
                fields.setdefault(graphql_field_name(end.name), set()).add(
                    f"{end.direction} association {end.name!r} of role {end.role.id}"
                )
            for field_name in SYSTEM_FIELD_NAMES:
                if field_name in fields:
                    fields[field_name].add("system field")
            for field_name, sources in fields.items():
                signature = (field_name, frozenset(sources))
                if len(sources) > 1 and signature not in reported:
                    reported.add(signature)
                    self.errors.add(
                        f"GraphQL field name clash: {' and '.join(sorted(sources))} all become "
                        f"field {field_name!r}; rename one",
                        ck_type.source_file,
                        ck_type.id,
                    )

    def enum_values(self) -> None:
        for enum in self.model.enums.values():
            seen: dict[str, str] = {}
            for value in enum.values:
                name = graphql_enum_value_name(value.name)
                if not is_valid_graphql_name(name) or name in _RESERVED_ENUM_VALUES:
                    self.errors.add(
                        f"enum value {value.name!r} gives GraphQL value {name!r}, "
                        "which is not allowed; start it with a letter",
                        enum.source_file,
                        enum.id,
                    )
                elif name in seen:
                    self.errors.add(
                        f"GraphQL name clash: enum values {seen[name]!r} and {value.name!r} both "
                        f"become {name!r}; rename one",
                        enum.source_file,
                        enum.id,
                    )
                seen.setdefault(name, value.name)
