"""Turning the entries of one library's documents into model objects.

:class:`LibraryParser` collects the element entries of every file, then parses them kind by kind
(attributes first, so types and records can point at their declarations). Unknown keys are
warnings and stay in the entries, which are kept verbatim for export; missing keys, wrong value
kinds and bad references are errors (see :class:`~workbench.ck.findings.Findings`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from workbench.ck.findings import Findings
from workbench.ck.indexes import IndexParser
from workbench.ck.model import (
    CkAssociationRole,
    CkAttribute,
    CkEnum,
    CkLibrary,
    CkRecord,
    CkType,
    Dependency,
    EnumValue,
    Multiplicity,
    TypeAssociation,
    TypeAttribute,
    ValueType,
)
from workbench.ck.references import full_id, is_valid_element_id
from workbench.ck.versions import Version, VersionRange
from workbench.errors import ValidationError

__all__ = ["ELEMENT_KINDS", "MODEL_KEYS", "LibraryParser"]

#: The element lists a library file may hold, in the order of the compiled form.
ELEMENT_KINDS = ("attributes", "types", "records", "enums", "associationRoles")
#: The keys of ``ckModel.yaml`` (besides element lists, which a compiled file holds too).
MODEL_KEYS = {"modelId", "dependencies", "description", "migrations"}
_ID_KEYS = {
    "attributes": "id",
    "types": "typeId",
    "records": "recordId",
    "enums": "enumId",
    "associationRoles": "id",
}
_KIND_NAMES = {
    "attributes": "attribute",
    "types": "type",
    "records": "record",
    "enums": "enum",
    "associationRoles": "association role",
}

# (required keys, optional keys) per entry kind
_ATTRIBUTE_KEYS = (
    {"id", "valueType"},
    {
        "valueCkEnumId",
        "valueCkRecordId",
        "defaultValues",
        "description",
        "metaData",
        "isRuntimeState",
        "isSecret",
    },
)
_METADATA_KEYS = ({"key", "value"}, {"description"})
_TYPE_KEYS = (
    {"typeId"},
    {
        "derivedFromCkTypeId",
        "isAbstract",
        "isFinal",
        "description",
        "attributes",
        "associations",
        "indexes",
    },
)
_MEMBER_KEYS = (
    {"id"},
    {
        "name",
        "isOptional",
        "defaultValues",
        "autoCompleteValues",
        "autoIncrementReference",
        "description",
    },
)
_ASSOCIATION_KEYS = ({"id", "targetCkTypeId"}, {"description"})
_RECORD_KEYS = ({"recordId"}, {"derivedFromCkRecordId", "description", "attributes"})
_ENUM_KEYS = ({"enumId", "values"}, {"isExtensible", "useFlags", "description"})
_ENUM_VALUE_KEYS = ({"key", "name"}, {"description"})
_ROLE_KEYS = (
    {"id", "outboundName", "outboundMultiplicity", "inboundName", "inboundMultiplicity"},
    {"description"},
)


class LibraryParser(IndexParser):
    """Parses the documents of one library; problems go to ``findings``."""

    def __init__(
        self, library_name: str, location: Callable[[str], str], findings: Findings
    ) -> None:
        super().__init__(library_name, location, findings)
        self.entries: dict[str, list[tuple[str, Mapping[str, Any]]]] = {
            k: [] for k in ELEMENT_KINDS
        }
        #: unknown top-level keys of the files, kept for the compiled form (first file wins)
        self.extra_keys: dict[str, Any] = {}

    # -- documents ---------------------------------------------------------------------------

    def parse_dependencies(self, name: str, doc: Mapping[str, Any]) -> list[Dependency]:
        """The ``dependencies`` of ``ckModel.yaml``; a bare name means any version (a warning)."""
        where = self.location(name)
        raw = doc.get("dependencies") or []
        if not isinstance(raw, list):
            self.findings.add(
                "'dependencies' must be a list such as [System-[2.0,3.0)]", where, "dependencies"
            )
            return []
        dependencies = []
        for text in raw:
            try:
                dependencies.append(Dependency.parse(text))
            except ValidationError as exc:
                if isinstance(text, str) and is_valid_element_id(text.strip()):
                    self.findings.warn(
                        f"dependency {text!r} has no version range and accepts any version of "
                        f"{text.strip()}; write it as {text.strip()}-[1.0,2.0)",
                        where,
                        "dependencies",
                    )
                    dependencies.append(Dependency(text.strip(), VersionRange(text="*")))
                else:
                    self.findings.add(exc.message, where, "dependencies")
        seen: set[str] = set()
        for dependency in dependencies:
            if dependency.name in seen or dependency.name == self.name:
                self.findings.add(
                    f"dependency on {dependency.name} is listed twice or is the library itself",
                    where,
                    "dependencies",
                )
            seen.add(dependency.name)
        if doc.get("description") is not None and not isinstance(doc["description"], str):
            self.findings.add("'description' must be a string", where, "description")
        return dependencies

    def collect(self, name: str, content: Any, *, is_model_doc: bool) -> None:
        """Gather the element entries of one file (and note its unknown top-level keys)."""
        where = self.location(name)
        if content is None:
            return
        if not isinstance(content, Mapping):
            self.findings.add(
                f"a library file must be a mapping with any of {', '.join(ELEMENT_KINDS)}",
                where,
                None,
            )
            return
        known = {*ELEMENT_KINDS} | (MODEL_KEYS if is_model_doc else set())
        self.findings.unknown_keys(set(content), "a library file", known, where, None)
        for key in sorted(set(content) - known - {"$schema"}):
            self.extra_keys.setdefault(key, copy.deepcopy(content[key]))
        for kind in ELEMENT_KINDS:
            entries = content.get(kind)
            if entries is None:
                continue
            if not isinstance(entries, list):
                self.findings.add(f"'{kind}' must be a list", where, kind)
                continue
            for index, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    self.findings.add(
                        f"each entry must be a mapping, not {entry!r}", where, f"{kind}[{index}]"
                    )
                    continue
                self.entries[kind].append((where, entry))

    def compiled(
        self, model_doc: Mapping[str, Any], migrations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The library as one document: model keys, element lists, migrations, unknown keys."""
        raw: dict[str, Any] = {
            "modelId": model_doc["modelId"],
            "dependencies": copy.deepcopy(list(model_doc.get("dependencies") or [])),
        }
        if model_doc.get("description") is not None:
            raw["description"] = model_doc["description"]
        for kind in ELEMENT_KINDS:
            if self.entries[kind]:
                raw[kind] = [copy.deepcopy(dict(entry)) for _, entry in self.entries[kind]]
        if migrations:
            raw["migrations"] = migrations
        for key, value in self.extra_keys.items():
            raw.setdefault(key, value)
        return raw

    # -- elements ----------------------------------------------------------------------------

    def parse_elements(self) -> CkLibrary:
        """Every collected entry as a model element of a new :class:`CkLibrary`."""
        library = CkLibrary(name=self.name, version=Version(0))
        seen: dict[str, dict[str, str]] = {kind: {} for kind in ELEMENT_KINDS}
        parsers: dict[str, Callable[[CkLibrary, str, str, Mapping[str, Any]], None]] = {
            "attributes": self._attribute,
            "enums": self._enum,
            "associationRoles": self._role,
            "records": self._record,
            "types": self._type,
        }
        for kind in ("attributes", "enums", "associationRoles", "records", "types"):
            id_key = _ID_KEYS[kind]
            for index, (where, entry) in enumerate(self.entries[kind]):
                element_id = entry.get(id_key)
                if not isinstance(element_id, str) or not is_valid_element_id(element_id):
                    self.findings.add(
                        f"{_KIND_NAMES[kind]} needs '{id_key}': a plain id such as EnergyMeter "
                        f"(letters, digits, '_', '.', '-'), not {element_id!r}",
                        where,
                        f"{kind}[{index}]",
                    )
                    continue
                element = full_id(self.name, element_id)
                if element in seen[kind]:
                    self.findings.add(
                        f"duplicate {_KIND_NAMES[kind]} id {element_id!r}: "
                        f"also declared in {seen[kind][element]}",
                        where,
                        element,
                    )
                    continue
                seen[kind][element] = where
                parsers[kind](library, where, element, entry)
        library.referenced_libraries = dict(self.referenced)
        return library

    def _attribute(
        self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]
    ) -> None:
        self._keys(entry, _ATTRIBUTE_KEYS, where, element, "attribute")
        raw_type = entry.get("valueType")
        try:
            value_type = ValueType(str(raw_type))
        except ValueError:
            if "valueType" in entry:
                self.findings.add(
                    f"unknown valueType {raw_type!r}; valid value types: "
                    f"{', '.join(v.value for v in ValueType)}",
                    where,
                    element,
                )
            return
        enum_id = self._target(entry, value_type, "valueCkEnumId", (ValueType.ENUM,), where)
        record_id = self._target(
            entry, value_type, "valueCkRecordId", (ValueType.RECORD, ValueType.RECORD_ARRAY), where
        )
        metadata: dict[str, str] = {}
        for item in self._list(entry, "metaData", where, element):
            if not isinstance(item, Mapping) or not {"key", "value"} <= set(item):
                self.findings.add(
                    f"metaData entries must be {{key: ..., value: ..., description: ...}}, "
                    f"not {item!r}",
                    where,
                    element,
                )
                continue
            self._keys(item, _METADATA_KEYS, where, element, f"metaData entry {item['key']!r}")
            metadata[str(item["key"])] = "" if item["value"] is None else str(item["value"])
        lib.attributes[element] = CkAttribute(
            id=element,
            value_type=value_type,
            enum_id=enum_id,
            record_id=record_id,
            default_values=self._list(entry, "defaultValues", where, element),
            description=self._text(entry, "description", where, element),
            metadata=metadata,
            is_runtime_state=self._bool(entry, "isRuntimeState", where, element),
            is_secret=self._bool(entry, "isSecret", where, element),
            source_file=where,
        )

    def _target(
        self,
        entry: Mapping[str, Any],
        value_type: ValueType,
        key: str,
        value_types: tuple[ValueType, ...],
        where: str,
    ) -> str | None:
        """The enum or record an attribute's values come from (``valueCkEnumId``, ...)."""
        element = full_id(self.name, str(entry.get("id")))
        names = " and ".join(v.value for v in value_types)
        if key in entry:
            if value_type not in value_types:
                self.findings.add(
                    f"{key} is only allowed on {names} attributes, not on {value_type.value}",
                    where,
                    element,
                )
                return None
            return self._ref(entry[key], where, element, key)
        if value_type in value_types:
            example = "MeterState" if key == "valueCkEnumId" else "PhaseInfo"
            self.findings.add(
                f"{'an' if value_type is ValueType.ENUM else 'a'} {value_type.value} attribute "
                f"needs {key} naming its "
                f"{'enum' if key == 'valueCkEnumId' else 'record'}, such as ${{this}}/{example}",
                where,
                element,
            )
        return None

    def _members(
        self, lib: CkLibrary, entry: Mapping[str, Any], where: str, element: str
    ) -> list[TypeAttribute]:
        members = []
        form = "a mapping with id and name"
        for what, item in self._mappings(
            entry, "attributes", where, element, "attribute entry", form, _MEMBER_KEYS
        ):
            attribute_id = self._ref(item.get("id"), where, element, f"{what} id")
            if attribute_id is None:
                continue
            name = item.get("name", attribute_id.rpartition("/")[2])
            if not isinstance(name, str) or not name:
                self.findings.add(f"{what} name must be a string, not {name!r}", where, element)
                continue
            auto_increment = self._text(item, "autoIncrementReference", where, element)
            members.append(
                TypeAttribute(
                    attribute_id=attribute_id,
                    name=name,
                    attribute=lib.attributes.get(attribute_id)
                    or CkAttribute(id=attribute_id, value_type=ValueType.STRING),
                    declared_on=element,
                    is_optional=self._bool(item, "isOptional", where, element),
                    default_values=self._list(item, "defaultValues", where, element),
                    auto_complete_values=self._list(item, "autoCompleteValues", where, element),
                    auto_increment_reference=auto_increment,
                )
            )
        return members

    def _enum(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _ENUM_KEYS, where, element, "enum")
        values: list[EnumValue] = []
        keys: set[int] = set()
        names: set[str] = set()
        raw_values = self._list(entry, "values", where, element)
        if "values" in entry and not raw_values:
            self.findings.add("an enum needs at least one value", where, element)
        for index, item in enumerate(raw_values):
            what = f"enum value {index}"
            if not isinstance(item, Mapping):
                self.findings.add(f"{what} must be {{key: 0, name: Unknown}}", where, element)
                continue
            self._keys(item, _ENUM_VALUE_KEYS, where, element, what)
            key, name = item.get("key"), item.get("name")
            if isinstance(key, bool) or not isinstance(key, int):
                self.findings.add(f"{what} key must be an integer, not {key!r}", where, element)
                continue
            if not isinstance(name, str) or not name:
                self.findings.add(f"{what} name must be a string, not {name!r}", where, element)
                continue
            if key in keys:
                self.findings.add(f"duplicate enum key {key} ({name})", where, element)
            if name.lower() in names:
                self.findings.add(f"duplicate enum name {name!r}", where, element)
            keys.add(key)
            names.add(name.lower())
            values.append(EnumValue(key, name, self._text(item, "description", where, element)))
        lib.enums[element] = CkEnum(
            id=element,
            values=values,
            is_extensible=self._bool(entry, "isExtensible", where, element),
            use_flags=self._bool(entry, "useFlags", where, element),
            description=self._text(entry, "description", where, element),
            source_file=where,
        )

    def _role(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _ROLE_KEYS, where, element, "association role")
        multiplicities = []
        for key in ("outboundMultiplicity", "inboundMultiplicity"):
            try:
                multiplicities.append(Multiplicity(str(entry.get(key))))
            except ValueError:
                if key in entry:
                    self.findings.add(
                        f"{key} {entry.get(key)!r} is not valid; use one of: "
                        f"{' | '.join(m.value for m in Multiplicity)}",
                        where,
                        element,
                    )
        names = [self._text(entry, key, where, element) for key in ("outboundName", "inboundName")]
        if len(multiplicities) != 2 or not all(names):
            return
        lib.roles[element] = CkAssociationRole(
            id=element,
            outbound_name=str(names[0]),
            outbound_multiplicity=multiplicities[0],
            inbound_name=str(names[1]),
            inbound_multiplicity=multiplicities[1],
            description=self._text(entry, "description", where, element),
            source_file=where,
        )

    def _base(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> str | None:
        """The element's base (``derivedFromCk...Id``), resolved; None without one."""
        return self._ref(entry[key], where, element, key) if key in entry else None

    def _record(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _RECORD_KEYS, where, element, "record")
        base = self._base(entry, "derivedFromCkRecordId", where, element)
        lib.records[element] = CkRecord(
            id=element,
            own_attributes=self._members(lib, entry, where, element),
            derived_from=base,
            description=self._text(entry, "description", where, element),
            source_file=where,
        )

    def _type(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _TYPE_KEYS, where, element, "type")
        base = self._base(entry, "derivedFromCkTypeId", where, element)
        associations = []
        form = "{id: role, targetCkTypeId: type}"
        for what, item in self._mappings(
            entry, "associations", where, element, "association", form, _ASSOCIATION_KEYS
        ):
            role = self._ref(item.get("id"), where, element, f"{what} id")
            target = self._ref(item.get("targetCkTypeId"), where, element, f"{what} targetCkTypeId")
            if role and target:
                associations.append(TypeAssociation(role, target, element))
        lib.types[element] = CkType(
            id=element,
            derived_from=base,
            own_attributes=self._members(lib, entry, where, element),
            own_associations=associations,
            own_indexes=self._indexes(entry, where, element),
            is_abstract=self._bool(entry, "isAbstract", where, element),
            is_final=self._bool(entry, "isFinal", where, element),
            description=self._text(entry, "description", where, element),
            source_file=where,
        )
