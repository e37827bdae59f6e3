"""Loading Construction Kit libraries from YAML folders, compiled files or parsed documents.

The loader checks each library on its own: the file format (unknown keys are errors), value
types, multiplicities, reference syntax, duplicate ids and enum values. Checks that need the other
libraries (unknown references, inheritance) happen in :func:`workbench.ck.resolver.resolve_model`.
All problems of a library are collected and raised together as one :class:`ModelError` whose
``details`` name the file, the element and the reason.

Inside a loaded library, a type's or record's attribute entries point at the library's own
:class:`CkAttribute` when the attribute is declared locally; attributes of other libraries are
stand-ins (``value_type`` String) until the model is resolved.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from workbench.ck.migrations import parse_inline_migrations, parse_migration_documents
from workbench.ck.model import (
    CkAssociationRole,
    CkAttribute,
    CkEnum,
    CkIndex,
    CkLibrary,
    CkRecord,
    CkType,
    Dependency,
    EnumValue,
    IndexType,
    Migration,
    Multiplicity,
    TypeAssociation,
    TypeAttribute,
    ValueType,
)
from workbench.ck.references import full_id, is_valid_element_id, resolve_reference
from workbench.ck.versions import Version, parse_model_id
from workbench.errors import ErrorCollector, ErrorDetail, ModelError, NotFound, ValidationError

__all__ = [
    "ELEMENT_KINDS",
    "dump_library",
    "load_library",
    "load_library_from_documents",
    "load_library_from_text",
    "parse_yaml",
]

#: The element lists a library file may hold, in the order of the compiled form.
ELEMENT_KINDS = ("attributes", "types", "records", "enums", "associationRoles")
_MODEL_FILES = ("ckModel.yaml", "ckModel.yml")
_MODEL_KEYS = {"modelId", "dependencies", "description", "migrations"}
_IGNORED_KEYS = {"$schema"}
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
    },
)
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
_INDEX_KEYS = ({"indexType", "fields"}, set[str]())
_INDEX_FIELD_KEYS = ({"attributePaths"}, set[str]())
_RECORD_KEYS = ({"recordId"}, {"derivedFromCkRecordId", "description", "attributes"})
_ENUM_KEYS = ({"enumId", "values"}, {"isExtensible", "useFlags", "description"})
_ENUM_VALUE_KEYS = ({"key", "name"}, {"description"})
_ROLE_KEYS = (
    {"id", "outboundName", "outboundMultiplicity", "inboundName", "inboundMultiplicity"},
    {"description"},
)


class _Yaml12Loader(yaml.SafeLoader):
    """Safe loader whose booleans are YAML 1.2's ``true``/``false`` only.

    PyYAML follows YAML 1.1, where ``On``, ``Off``, ``Yes`` and ``No`` are booleans; enum value
    names such as ``Off`` must stay strings, as in the .NET tooling that writes these files.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document as library files are parsed (YAML 1.2 booleans, safe types)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: safe


def load_library(path: Path | str) -> CkLibrary:
    """Load a library from a folder (``ckModel.yaml`` + element files) or one compiled file.

    A folder holding ``ConstructionKit/ckModel.yaml`` is accepted too. A compiled file is YAML or
    JSON (``.json``) holding ``modelId``, ``dependencies`` and the element lists.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(_library_root(path))
    if not path.is_file():
        raise NotFound(f"construction kit library {str(path)!r} does not exist")
    content = _parse_file(path, str(path))
    return _build([(path.name, content)], location=lambda _name: str(path), source=path)


def load_library_from_documents(
    documents: Sequence[tuple[str, Any]], *, source: Path | None = None
) -> CkLibrary:
    """Load a library from parsed documents: ``(name, content)`` pairs, names relative paths.

    One document holds ``modelId`` (``ckModel.yaml`` or a compiled file); documents under the
    ``migrations/`` folder next to it are migrations; all others are element files.
    """
    return _build(list(documents), location=lambda name: name, source=source)


def load_library_from_text(text: str, source_name: str = "<text>") -> CkLibrary:
    """Load a library from the text of one compiled YAML or JSON document."""
    content = _parse_text(text, source_name)
    return load_library_from_documents([(source_name, content)])


def dump_library(library: CkLibrary) -> dict[str, Any]:
    """The library in compiled form (a copy of :attr:`CkLibrary.raw`); loading it gives it back.

    Keys: ``modelId``, ``dependencies``, optional ``description``, the non-empty element lists in
    file format with the original reference strings, and ``migrations`` (with inline ``steps``).
    """
    if not library.raw:
        raise ModelError(
            f"library {library.model_id} was not loaded from files and has no compiled form; "
            "load it with load_library()"
        )
    return copy.deepcopy(library.raw)


def _library_root(folder: Path) -> Path:
    for candidate in (folder, folder / "ConstructionKit"):
        if any((candidate / name).is_file() for name in _MODEL_FILES):
            return candidate
    raise NotFound(
        f"folder {str(folder)!r} holds no ckModel.yaml; a library folder needs ckModel.yaml "
        "(modelId, dependencies) and element files"
    )


def _load_folder(root: Path) -> CkLibrary:
    errors = ErrorCollector()
    documents: list[tuple[str, Any]] = []
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in {".yaml", ".yml"}
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for file in files:
        name = file.relative_to(root).as_posix()
        try:
            documents.append((name, _parse_file(file, str(file))))
        except ModelError as exc:
            errors.details.extend(exc.details)
    errors.raise_if_any(ModelError, f"construction kit library {str(root)!r} has invalid YAML")
    return _build(documents, location=lambda name: str(root / name), source=root)


def _parse_file(path: Path, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {label}: {exc}") from exc
    return _parse_text(text, label, as_json=path.suffix == ".json")


def _parse_text(text: str, label: str, *, as_json: bool = False) -> Any:
    try:
        return json.loads(text) if as_json else parse_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        problem = str(exc).replace("\n", " ")
        raise ModelError(
            f"{label} is not valid {'JSON' if as_json else 'YAML'}",
            [ErrorDetail(f"not valid {'JSON' if as_json else 'YAML'}: {problem}", label)],
        ) from exc


def _build(
    documents: list[tuple[str, Any]], *, location: Callable[[str], str], source: Path | None
) -> CkLibrary:
    model_docs = [(n, c) for n, c in documents if isinstance(c, Mapping) and "modelId" in c]
    if len(model_docs) != 1:
        names = ", ".join(location(n) for n, _ in model_docs) or "none"
        raise ModelError(
            f"a library needs exactly one ckModel.yaml (or compiled file) with 'modelId'; "
            f"found: {names}"
        )
    model_name, model_doc = model_docs[0]
    try:
        library_name, version = parse_model_id(model_doc["modelId"])
    except ValidationError as exc:
        raise ModelError(
            "invalid model id", [ErrorDetail(exc.message, location(model_name), "modelId")]
        ) from None
    parser = _LibraryParser(library_name, location)
    root = posixpath.dirname(model_name)
    migration_docs: list[tuple[str, Any]] = []
    element_docs: list[tuple[str, Any]] = [(model_name, model_doc)]
    for name, content in documents:
        if name == model_name:
            continue
        relative = posixpath.relpath(name, root) if root else name
        if relative.startswith("migrations/"):
            migration_docs.append((relative.removeprefix("migrations/"), content))
        else:
            element_docs.append((name, content))
    dependencies = parser.parse_model_doc(model_name, model_doc)
    parser.allowed_libraries |= {d.name for d in dependencies}
    for name, content in element_docs:
        parser.collect(name, content, is_model_doc=name == model_name)
    library = parser.parse_elements()
    library.name, library.version, library.source = library_name, version, source
    library.dependencies = dependencies
    library.description = model_doc.get("description")
    compiled_migrations: list[dict[str, Any]] = []
    if "migrations" in model_doc:
        library.migrations = parse_inline_migrations(
            model_doc["migrations"], library_name, location(model_name), parser.errors
        )
        compiled_migrations = copy.deepcopy(model_doc["migrations"])
    if migration_docs:
        migrations, compiled = parse_migration_documents(
            migration_docs,
            library_name,
            parser.errors,
            location=lambda n: location(posixpath.join(root, "migrations", n)),
        )
        library.migrations.extend(migrations)
        compiled_migrations.extend(compiled)
    library.migrations.sort(key=_migration_order)
    parser.errors.raise_if_any(
        ModelError,
        f"construction kit library {library.model_id} has errors; fix them and load it again",
    )
    library.raw = parser.compiled(model_doc, compiled_migrations)
    return library


def _migration_order(migration: Migration) -> tuple[Any, ...]:
    return (migration.from_version, migration.to_version)


class _LibraryParser:
    """Turns the entries of one library's documents into model objects, collecting errors."""

    def __init__(self, library_name: str, location: Callable[[str], str]) -> None:
        self.name = library_name
        self.location = location
        self.errors = ErrorCollector()
        self.allowed_libraries = {library_name, "System"}
        self.entries: dict[str, list[tuple[str, Mapping[str, Any]]]] = {
            k: [] for k in ELEMENT_KINDS
        }

    # -- documents ---------------------------------------------------------------------------

    def parse_model_doc(self, name: str, doc: Mapping[str, Any]) -> list[Dependency]:
        where = self.location(name)
        raw = doc.get("dependencies") or []
        if not isinstance(raw, list):
            self.errors.add(
                "'dependencies' must be a list such as [System-[2.0,3.0)]", where, "dependencies"
            )
            return []
        dependencies = []
        for text in raw:
            try:
                dependencies.append(Dependency.parse(text))
            except ValidationError as exc:
                self.errors.add(exc.message, where, "dependencies")
        seen: set[str] = set()
        for dependency in dependencies:
            if dependency.name in seen or dependency.name == self.name:
                self.errors.add(
                    f"dependency on {dependency.name} is listed twice or is the library itself",
                    where,
                    "dependencies",
                )
            seen.add(dependency.name)
        description = doc.get("description")
        if description is not None and not isinstance(description, str):
            self.errors.add("'description' must be a string", where, "description")
        return dependencies

    def collect(self, name: str, content: Any, *, is_model_doc: bool) -> None:
        where = self.location(name)
        if content is None:
            return
        if not isinstance(content, Mapping):
            self.errors.add(
                f"a library file must be a mapping with any of {', '.join(ELEMENT_KINDS)}",
                where,
                None,
            )
            return
        allowed = {*ELEMENT_KINDS, *_IGNORED_KEYS} | (_MODEL_KEYS if is_model_doc else set())
        for key in content:
            if key not in allowed:
                hint = f" ({key!r} belongs in ckModel.yaml only)" if key in _MODEL_KEYS else ""
                self.errors.add(
                    f"unknown key {key!r}{hint}; "
                    f"a library file holds: {', '.join(sorted(allowed))}",
                    where,
                    None,
                )
        for kind in ELEMENT_KINDS:
            entries = content.get(kind)
            if entries is None:
                continue
            if not isinstance(entries, list):
                self.errors.add(f"'{kind}' must be a list", where, kind)
                continue
            for index, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    self.errors.add(
                        f"each entry must be a mapping, not {entry!r}", where, f"{kind}[{index}]"
                    )
                    continue
                self.entries[kind].append((where, entry))

    def compiled(
        self, model_doc: Mapping[str, Any], migrations: list[dict[str, Any]]
    ) -> dict[str, Any]:
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
        return raw

    # -- elements ----------------------------------------------------------------------------

    def parse_elements(self) -> CkLibrary:
        library = CkLibrary(name=self.name, version=Version(0))
        seen: dict[str, dict[str, str]] = {kind: {} for kind in ELEMENT_KINDS}
        parsers: dict[str, Callable[[str, str, Mapping[str, Any]], None]] = {
            "attributes": lambda w, i, e: self._attribute(library, w, i, e),
            "enums": lambda w, i, e: self._enum(library, w, i, e),
            "associationRoles": lambda w, i, e: self._role(library, w, i, e),
            "records": lambda w, i, e: self._record(library, w, i, e),
            "types": lambda w, i, e: self._type(library, w, i, e),
        }
        for kind in ("attributes", "enums", "associationRoles", "records", "types"):
            id_key = _ID_KEYS[kind]
            for index, (where, entry) in enumerate(self.entries[kind]):
                element_id = entry.get(id_key)
                if not isinstance(element_id, str) or not is_valid_element_id(element_id):
                    self.errors.add(
                        f"{_KIND_NAMES[kind]} needs '{id_key}': a plain id such as EnergyMeter "
                        f"(letters, digits, '_', '.', '-'), not {element_id!r}",
                        where,
                        f"{kind}[{index}]",
                    )
                    continue
                element = full_id(self.name, element_id)
                if element in seen[kind]:
                    self.errors.add(
                        f"duplicate {_KIND_NAMES[kind]} id {element_id!r}: "
                        f"also declared in {seen[kind][element]}",
                        where,
                        element,
                    )
                    continue
                seen[kind][element] = where
                parsers[kind](where, element, entry)
        return library

    def _keys(
        self,
        entry: Mapping[str, Any],
        keys: tuple[set[str], set[str]],
        where: str,
        element: str,
        what: str,
    ) -> None:
        required, optional = keys
        for key in entry:
            if key not in required and key not in optional and key not in _IGNORED_KEYS:
                self.errors.add(
                    f"unknown key {key!r} in {what}; allowed keys: "
                    f"{', '.join(sorted(required | optional))}",
                    where,
                    element,
                )
        for key in sorted(required - set(entry)):
            self.errors.add(f"missing key {key!r} in {what}", where, element)

    def _ref(self, value: Any, where: str, element: str, key: str) -> str | None:
        if value is None:
            return None  # reported as a missing key
        try:
            resolved = resolve_reference(value, self.name)
        except ModelError as exc:
            self.errors.add(f"{key}: {exc.message}", where, element)
            return None
        library = resolved.rpartition("/")[0]
        if library not in self.allowed_libraries:
            self.errors.add(
                f"{key} {value!r} refers to library {library} but {self.name} does not depend on "
                f"it; add a dependency such as {library}-[1.0,2.0) to ckModel.yaml",
                where,
                element,
            )
            return None
        return resolved

    def _bool(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> bool:
        value = entry.get(key, False)
        if not isinstance(value, bool):
            self.errors.add(f"{key} must be true or false, not {value!r}", where, element)
            return False
        return value

    def _text(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> str | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            self.errors.add(f"{key} must be a string, not {value!r}", where, element)
            return None
        return value

    def _list(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> list[Any]:
        value = entry.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.errors.add(f"{key} must be a list, not {value!r}", where, element)
            return []
        return copy.deepcopy(value)

    def _attribute(
        self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]
    ) -> None:
        self._keys(entry, _ATTRIBUTE_KEYS, where, element, "attribute")
        raw_type = entry.get("valueType")
        try:
            value_type = ValueType(str(raw_type))
        except ValueError:
            if "valueType" in entry:
                self.errors.add(
                    f"unknown valueType {raw_type!r}; valid value types: "
                    f"{', '.join(v.value for v in ValueType)}",
                    where,
                    element,
                )
            return
        enum_id = record_id = None
        if "valueCkEnumId" in entry:
            if value_type is not ValueType.ENUM:
                self.errors.add(
                    f"valueCkEnumId is only allowed on Enum attributes, not on {value_type.value}",
                    where,
                    element,
                )
            else:
                enum_id = self._ref(entry["valueCkEnumId"], where, element, "valueCkEnumId")
        elif value_type is ValueType.ENUM:
            self.errors.add(
                "an Enum attribute needs valueCkEnumId naming its enum, such as ${this}/MeterState",
                where,
                element,
            )
        if "valueCkRecordId" in entry:
            if value_type not in (ValueType.RECORD, ValueType.RECORD_ARRAY):
                self.errors.add(
                    f"valueCkRecordId is only allowed on Record and RecordArray "
                    f"attributes, not on {value_type.value}",
                    where,
                    element,
                )
            else:
                record_id = self._ref(entry["valueCkRecordId"], where, element, "valueCkRecordId")
        elif value_type in (ValueType.RECORD, ValueType.RECORD_ARRAY):
            self.errors.add(
                f"a {value_type.value} attribute needs valueCkRecordId naming its "
                "record, such as ${this}/PhaseInfo",
                where,
                element,
            )
        metadata: dict[str, str] = {}
        for item in self._list(entry, "metaData", where, element):
            if not isinstance(item, Mapping) or set(item) != {"key", "value"}:
                self.errors.add(
                    f"metaData entries must be {{key: ..., value: ...}}, not {item!r}",
                    where,
                    element,
                )
                continue
            metadata[str(item["key"])] = str(item["value"])
        lib.attributes[element] = CkAttribute(
            id=element,
            value_type=value_type,
            enum_id=enum_id,
            record_id=record_id,
            default_values=self._list(entry, "defaultValues", where, element),
            description=self._text(entry, "description", where, element),
            metadata=metadata,
            is_runtime_state=self._bool(entry, "isRuntimeState", where, element),
            source_file=where,
        )

    def _members(
        self, lib: CkLibrary, entry: Mapping[str, Any], where: str, element: str
    ) -> list[TypeAttribute]:
        members = []
        for index, item in enumerate(self._list(entry, "attributes", where, element)):
            what = f"attribute entry {index}"
            if not isinstance(item, Mapping):
                self.errors.add(f"{what} must be a mapping with id and name", where, element)
                continue
            self._keys(item, _MEMBER_KEYS, where, element, what)
            attribute_id = self._ref(item.get("id"), where, element, f"{what} id")
            if attribute_id is None:
                continue
            name = item.get("name", attribute_id.rpartition("/")[2])
            if not isinstance(name, str) or not name:
                self.errors.add(f"{what} name must be a string, not {name!r}", where, element)
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
            self.errors.add("an enum needs at least one value", where, element)
        for index, item in enumerate(raw_values):
            what = f"enum value {index}"
            if not isinstance(item, Mapping):
                self.errors.add(f"{what} must be {{key: 0, name: Unknown}}", where, element)
                continue
            self._keys(item, _ENUM_VALUE_KEYS, where, element, what)
            key, name = item.get("key"), item.get("name")
            if isinstance(key, bool) or not isinstance(key, int):
                self.errors.add(f"{what} key must be an integer, not {key!r}", where, element)
                continue
            if not isinstance(name, str) or not name:
                self.errors.add(f"{what} name must be a string, not {name!r}", where, element)
                continue
            if key in keys:
                self.errors.add(f"duplicate enum key {key} ({name})", where, element)
            if name.lower() in names:
                self.errors.add(f"duplicate enum name {name!r}", where, element)
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
                    self.errors.add(
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

    def _record(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _RECORD_KEYS, where, element, "record")
        base = None
        if "derivedFromCkRecordId" in entry:
            base = self._ref(
                entry["derivedFromCkRecordId"], where, element, "derivedFromCkRecordId"
            )
        lib.records[element] = CkRecord(
            id=element,
            own_attributes=self._members(lib, entry, where, element),
            derived_from=base,
            description=self._text(entry, "description", where, element),
            source_file=where,
        )

    def _type(self, lib: CkLibrary, where: str, element: str, entry: Mapping[str, Any]) -> None:
        self._keys(entry, _TYPE_KEYS, where, element, "type")
        base = None
        if "derivedFromCkTypeId" in entry:
            base = self._ref(entry["derivedFromCkTypeId"], where, element, "derivedFromCkTypeId")
        associations = []
        for index, item in enumerate(self._list(entry, "associations", where, element)):
            what = f"association {index}"
            if not isinstance(item, Mapping):
                self.errors.add(
                    f"{what} must be {{id: role, targetCkTypeId: type}}", where, element
                )
                continue
            self._keys(item, _ASSOCIATION_KEYS, where, element, what)
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

    def _indexes(self, entry: Mapping[str, Any], where: str, element: str) -> list[CkIndex]:
        indexes = []
        for index, item in enumerate(self._list(entry, "indexes", where, element)):
            what = f"index {index}"
            if not isinstance(item, Mapping):
                self.errors.add(f"{what} must be {{indexType, fields}}", where, element)
                continue
            self._keys(item, _INDEX_KEYS, where, element, what)
            try:
                index_type = IndexType(str(item.get("indexType")))
            except ValueError:
                self.errors.add(
                    f"{what} indexType {item.get('indexType')!r} is not valid; use one of: "
                    f"{' | '.join(t.value for t in IndexType)}",
                    where,
                    element,
                )
                continue
            fields = []
            for field in self._list(item, "fields", where, element):
                paths = field.get("attributePaths") if isinstance(field, Mapping) else None
                if isinstance(field, Mapping):
                    self._keys(field, _INDEX_FIELD_KEYS, where, element, f"{what} field")
                if (
                    not isinstance(paths, list)
                    or not paths
                    or not all(isinstance(p, str) and p for p in paths)
                ):
                    self.errors.add(
                        f"{what} fields must be [{{attributePaths: [Name, ...]}}]", where, element
                    )
                    continue
                fields.append(list(paths))
            if fields:
                indexes.append(CkIndex(index_type, fields, element))
            elif "fields" in item:
                self.errors.add(f"{what} needs at least one field", where, element)
        return indexes
