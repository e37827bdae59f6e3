"""User-facing filters, sorts and searches translated into the storage query model.

Attribute paths use GraphQL names (first letter lower-cased):

- system fields: ``rtId``, ``ckTypeId``, ``rtWellKnownName``, ``rtCreationDateTime``,
  ``rtChangedDateTime``, ``rtVersion``;
- attributes of the type: ``serialNumber``;
- record paths with ``.``: ``phaseL1.voltage``. A path may go through a RecordArray
  (``phases.voltage``): it then matches when *any* element matches, and two filters on the same
  array may be satisfied by different elements (the storage adapters follow MongoDB's rule for
  paths through arrays);
- association paths with ``->``: ``parent->name``, ``children->serialNumber``,
  ``parent->parent->name``. Each hop becomes an
  :class:`~workbench.query.model.AssociationCondition`; separate filters through the same
  association are independent (they may be met by different linked entities).

Names are looked up on the queried type (or, after ``->``, on the type at the other end). A name
not found there is looked up on the subtypes (and, for records, on derived records): it is
accepted when every subtype that has it stores it the same way (same declared name, value type,
enum and record); otherwise the path is rejected naming the subtypes. Entities of types without
the attribute then simply have no value for it (so ``NOT_EQUALS`` matches them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.ck.model import AssociationEnd, CkAttribute, CkModel, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.errors import ErrorCollector, ValidationError
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    Filter,
    Operator,
    Path,
    SortKey,
    TextSearch,
)
from workbench.runtime.values import (
    applicable_operators,
    coerce_value,
    find_attribute,
    split_list_value,
)

__all__ = [
    "FieldFilter",
    "WhereClause",
    "compile_filters",
    "compile_search",
    "compile_sort",
    "parse_cli_filter",
    "parse_cli_sort",
    "resolve_attribute_path",
]


@dataclass(frozen=True)
class FieldFilter:
    """One field filter as GraphQL's ``FieldFilterInput``: ``attributePath operator value``.

    ``comparison_value`` is a raw value (string from the CLI, JSON value from GraphQL); it is
    converted to the attribute's value type by :func:`compile_filters`.
    """

    attribute_path: str
    operator: Operator
    comparison_value: Any = None


#: what ``find(where=...)`` accepts per filter
WhereClause = str | FieldFilter | tuple[str, str, Any] | Mapping[str, Any]

_SYSTEM_FIELDS: dict[str, ValueType] = {
    "rtId": ValueType.STRING,
    "ckTypeId": ValueType.STRING,
    "rtWellKnownName": ValueType.STRING,
    "rtCreationDateTime": ValueType.DATETIME,
    "rtChangedDateTime": ValueType.DATETIME,
    "rtVersion": ValueType.INT64,
}
_SYSTEM_ATTRIBUTES = {
    name: TypeAttribute(
        attribute_id=f"System/{name}",
        name=name,
        attribute=CkAttribute(id=f"System/{name}", value_type=value_type),
        declared_on="System/Entity",
    )
    for name, value_type in _SYSTEM_FIELDS.items()
}
_SORTABLE = frozenset(
    {
        ValueType.STRING,
        ValueType.BOOLEAN,
        ValueType.INT,
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.DATETIME,
        ValueType.DATETIME_OFFSET,
        ValueType.TIMESPAN,
        ValueType.ENUM,
        ValueType.BINARY_LINKED,
    }
)
_SYMBOLS = {
    "==": Operator.EQUALS,
    "=": Operator.EQUALS,
    "!=": Operator.NOT_EQUALS,
    "<>": Operator.NOT_EQUALS,
    "<=": Operator.LESS_EQUAL_THAN,
    "<": Operator.LESS_THAN,
    ">=": Operator.GREATER_EQUAL_THAN,
    ">": Operator.GREATER_THAN,
}
_NO_VALUE = frozenset({Operator.IS_NULL, Operator.IS_NOT_NULL})
_LIST_VALUE = frozenset({Operator.IN, Operator.NOT_IN, Operator.BETWEEN})
_PATH = r"[A-Za-z_][\w.]*(?:\s*->\s*[A-Za-z_][\w.]*)*"
_SYMBOL_FILTER = re.compile(rf"\s*(?P<path>{_PATH})\s*(?P<op>==|!=|<>|<=|>=|=|<|>)(?P<value>.*)")
_WORD_FILTER = re.compile(
    rf"\s*(?P<path>{_PATH}|\S+)\s+(?P<op>[A-Za-z_]+)(?:\s+(?P<value>.*?))?\s*"
)
_FILTER_HELP = (
    'write \'PATH OPERATOR VALUE\', e.g. "state EQUALS Active", "phaseL1.voltage > 230", '
    "\"name IN 'Hall A','Hall B'\" or \"description IS_NULL\""
)


def _operator_names() -> str:
    return ", ".join(Operator) + ", and the symbols " + " ".join(s for s in _SYMBOLS if s != "==")


def _parse_operator(text: str) -> Operator:
    try:
        return Operator(text.upper())
    except ValueError:
        raise ValidationError(
            f"unknown filter operator {text!r}; use one of {_operator_names()}"
        ) from None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_cli_filter(text: str) -> FieldFilter:
    """Parse a CLI filter: ``"phaseL1.voltage GREATER_THAN 230"``, ``"voltage>=230"``,
    ``"name EQUALS 'Hall A'"``, ``"state IN Active,Faulty"``, ``"description IS_NULL"``.

    Operators are the GraphQL names (any casing) or ``= != < <= > >=`` (spaces optional).
    ``IS_NULL``/``IS_NOT_NULL`` take no value. A value in single or double quotes is taken
    literally; for ``IN``/``NOT_IN``/``BETWEEN`` the value is a comma-separated list (items may be
    quoted) or a JSON list, and ``comparison_value`` is a list of strings (or JSON values).
    Values stay strings otherwise: :func:`compile_filters` converts them per attribute.
    """
    symbol = _SYMBOL_FILTER.fullmatch(text)
    if symbol is not None:
        path, operator, raw_value = symbol["path"], _SYMBOLS[symbol["op"]], symbol["value"]
    else:
        word = _WORD_FILTER.fullmatch(text)
        if word is None:
            raise ValidationError(f"cannot read the filter {text!r}; {_FILTER_HELP}")
        path, operator, raw_value = word["path"], _parse_operator(word["op"]), word["value"]
    path = re.sub(r"\s*->\s*", "->", path)
    value = (raw_value or "").strip()
    if operator in _NO_VALUE:
        if value:
            raise ValidationError(
                f"filter {text!r}: {operator} takes no value, got {value!r}; write "
                f"'{path} {operator}'"
            )
        return FieldFilter(path, operator, None)
    if not value:
        raise ValidationError(
            f"filter {text!r}: {operator} needs a value after the operator; {_FILTER_HELP}"
        )
    if operator in _LIST_VALUE:
        try:
            return FieldFilter(path, operator, split_list_value(value))
        except ValueError as exc:
            raise ValidationError(f"filter {text!r}: {exc}") from None
    return FieldFilter(path, operator, _unquote(value))


def parse_cli_sort(text: str) -> tuple[str, bool]:
    """Parse a CLI sort key into ``(attribute path, descending)``: ``"serialNumber"``,
    ``"+serialNumber"``, ``"-serialNumber"``, ``"serialNumber:desc"``, ``"serialNumber:asc"``
    (also ``:ascending``/``:descending``, any casing)."""
    stripped = text.strip()
    descending = False
    if stripped[:1] in "+-" and stripped:
        descending, stripped = stripped[0] == "-", stripped[1:].strip()
    elif ":" in stripped:
        stripped, _, direction = stripped.rpartition(":")
        stripped = stripped.strip()
        lowered = direction.strip().lower()
        if lowered not in ("asc", "ascending", "desc", "descending"):
            raise ValidationError(
                f"sort {text!r}: unknown direction {direction!r}; use 'PATH:asc', 'PATH:desc' "
                "or '-PATH' for descending"
            )
        descending = lowered.startswith("desc")
    if not stripped:
        raise ValidationError(f"sort {text!r} names no attribute; write e.g. '-serialNumber'")
    return stripped, descending


# --- path resolution --------------------------------------------------------------------------


class _PathError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Resolved:
    """A resolved attribute path: the associations to cross, then the storage path."""

    hops: list[tuple[str, Literal["outbound", "inbound"]]]
    storage_path: Path
    attribute: TypeAttribute
    owner: str
    through_array: bool = False
    system: bool = False


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _describe(type_ids: Sequence[str]) -> str:
    return " / ".join(type_ids)


def _ends(model: CkModel, type_ids: Sequence[str]) -> list[AssociationEnd]:
    return [e for t in type_ids for e in (*model.outbound_ends(t), *model.inbound_ends(t))]


def _resolve_association(
    model: CkModel, type_ids: list[str], name: str, path: str
) -> tuple[str, Literal["outbound", "inbound"], list[str]]:
    lowered = name.lower()
    ends = [e for e in _ends(model, type_ids) if e.name.lower() == lowered]
    if not ends:
        subtypes = _dedupe([s for t in type_ids for s in model.descendants(t)])
        ends = [e for e in _ends(model, subtypes) if e.name.lower() == lowered]
    if not ends:
        known = sorted({graphql_field_name(e.name) for e in _ends(model, type_ids)})
        raise _PathError(
            f"'{name}' in path '{path}' is not an association of {_describe(type_ids)}; "
            f"associations: {', '.join(known) or 'none'}"
        )
    kinds = {(e.role.id, e.direction) for e in ends}
    if len(kinds) > 1:
        listed = ", ".join(f"{role} ({direction})" for role, direction in sorted(kinds))
        raise _PathError(
            f"'{name}' in path '{path}' is ambiguous on {_describe(type_ids)}: it names {listed}"
        )
    role_id, direction = kinds.pop()
    return role_id, direction, _dedupe([e.other_type_id for e in ends])


def _signature(attribute: TypeAttribute) -> tuple[str, ValueType, str | None, str | None]:
    return (
        attribute.name,
        attribute.value_type,
        attribute.attribute.enum_id,
        attribute.attribute.record_id,
    )


def _pick(
    found: list[tuple[str, TypeAttribute]], name: str, path: str, where: str
) -> TypeAttribute:
    kinds = {_signature(a) for _, a in found}
    if len(kinds) > 1:
        listed = "; ".join(f"{owner}: {a.name} ({a.value_type})" for owner, a in found)
        raise _PathError(
            f"'{name}' in path '{path}' is ambiguous: subtypes of {where} define it differently "
            f"({listed}); query one subtype instead"
        )
    return found[0][1]


def _type_attribute(model: CkModel, type_ids: list[str], name: str, path: str) -> TypeAttribute:
    found = [
        (t, a)
        for t in type_ids
        if (a := find_attribute(model.type(t).attributes, name)) is not None
    ]
    if not found:
        subtypes = _dedupe([s for t in type_ids for s in model.descendants(t)])
        found = [
            (t, a)
            for t in subtypes
            if (a := find_attribute(model.type(t).attributes, name)) is not None
        ]
    if not found:
        own = sorted({graphql_field_name(n) for t in type_ids for n in model.type(t).attributes})
        ends = sorted({graphql_field_name(e.name) + "->" for e in _ends(model, type_ids)})
        raise _PathError(
            f"unknown attribute '{name}' in path '{path}' for {_describe(type_ids)}; valid names: "
            f"{', '.join(own) or 'none'}; system fields: {', '.join(_SYSTEM_FIELDS)}; "
            f"associations: {', '.join(ends) or 'none'}"
        )
    return _pick(found, name, path, _describe(type_ids))


def _record_attribute(model: CkModel, record_id: str, name: str, path: str) -> TypeAttribute:
    record = model.record(record_id)
    found = find_attribute(record.attributes, name)
    if found is not None:
        return found
    derived = [
        r
        for r in model.records.values()
        if r.id != record_id and record_id in _record_ancestors(model, r.id)
    ]
    candidates = [
        (r.id, a) for r in derived if (a := find_attribute(r.attributes, name)) is not None
    ]
    if not candidates:
        known = sorted(graphql_field_name(n) for n in record.attributes)
        raise _PathError(
            f"unknown field '{name}' in path '{path}': record {record_id} has the fields "
            f"{', '.join(known) or 'none'}"
        )
    return _pick(candidates, name, path, record_id)


def _record_ancestors(model: CkModel, record_id: str) -> list[str]:
    chain: list[str] = []
    current = model.records.get(record_id)
    while current is not None and current.derived_from and current.derived_from not in chain:
        chain.append(current.derived_from)
        current = model.records.get(current.derived_from)
    return chain


def _resolve(model: CkModel, type_id: str, path: str) -> _Resolved:
    if not path or not path.strip():
        raise _PathError("the attribute path is empty; name an attribute such as 'name'")
    segments = [s.strip() for s in path.split("->")]
    if any(not s for s in segments):
        raise _PathError(f"path '{path}' has an empty part around '->'")
    type_ids = [type_id]
    hops: list[tuple[str, Literal["outbound", "inbound"]]] = []
    for name in segments[:-1]:
        role_id, direction, type_ids = _resolve_association(model, type_ids, name, path)
        hops.append((role_id, direction))
    parts = segments[-1].split(".")
    if any(not p for p in parts):
        raise _PathError(f"path '{path}' has an empty part around '.'")
    owner = _describe(type_ids)
    system = next((n for n in _SYSTEM_FIELDS if n.lower() == parts[0].lower()), None)
    if system is not None and len(parts) == 1:
        return _Resolved(hops, (system,), _SYSTEM_ATTRIBUTES[system], owner, system=True)
    attribute = _type_attribute(model, type_ids, parts[0], path)
    storage: Path = ("attributes", attribute.name)
    through_array = False
    for position, part in enumerate(parts[1:], start=1):
        if attribute.value_type not in (ValueType.RECORD, ValueType.RECORD_ARRAY):
            walked = ".".join(parts[:position])
            raise _PathError(
                f"path '{path}': '{walked}' is a {attribute.value_type} attribute and has no "
                "fields; only Record and RecordArray attributes can be followed by '.'"
            )
        into_array = attribute.value_type is ValueType.RECORD_ARRAY
        through_array = through_array or into_array
        attribute = _record_attribute(model, attribute.attribute.record_id or "", part, path)
        storage = (
            (*storage, ANY_ELEMENT, attribute.name) if into_array else (*storage, attribute.name)
        )
    return _Resolved(hops, storage, attribute, owner, through_array=through_array)


def resolve_attribute_path(
    model: CkModel, type_id: str, path: str
) -> tuple[list[tuple[str, Literal["outbound", "inbound"]]], Path, TypeAttribute, bool]:
    """``path`` on ``type_id`` as ``(association hops, storage path, attribute, goes through a
    RecordArray)``, resolved as filters resolve it; a ValidationError names what would be valid."""
    try:
        resolved = _resolve(model, type_id, path)
    except _PathError as exc:
        raise ValidationError(exc.message) from None
    return resolved.hops, resolved.storage_path, resolved.attribute, resolved.through_array


# --- compilation ------------------------------------------------------------------------------


def _as_operator(value: Operator | str) -> Operator:
    if isinstance(value, Operator):
        return value
    try:
        return Operator(str(value).upper())
    except ValueError:
        symbol = _SYMBOLS.get(str(value).strip())
        if symbol is None:
            raise _PathError(
                f"unknown filter operator {value!r}; use one of {_operator_names()}"
            ) from None
        return symbol


def _compile_one(model: CkModel, type_id: str, item: FieldFilter) -> Filter:
    operator = _as_operator(item.operator)
    resolved = _resolve(model, type_id, item.attribute_path)
    value_type = resolved.attribute.value_type
    fitting = applicable_operators(value_type)
    if operator not in fitting:
        raise _PathError(
            f"operator {operator} does not apply to '{item.attribute_path}' ({value_type}) of "
            f"{resolved.owner}; operators that fit: {', '.join(fitting)}"
        )
    if resolved.through_array and operator in (Operator.IS_NULL, Operator.IS_NOT_NULL):
        raise _PathError(
            f"'{item.attribute_path}' goes through a RecordArray; {operator} cannot say which "
            "element it means: test the array itself (IS_NULL on the RecordArray attribute)"
        )
    try:
        value = coerce_value(
            model,
            resolved.attribute,
            item.comparison_value,
            operator,
            path=item.attribute_path,
            owner=resolved.owner,
        )
    except ValidationError as exc:
        raise _PathError(exc.details[0].message if exc.details else exc.message) from None
    condition: Filter = Condition(resolved.storage_path, operator, value)
    for role_id, direction in reversed(resolved.hops):
        condition = AssociationCondition(role_id, direction, (condition,))
    return condition


def compile_filters(
    model: CkModel, type_id: str, filters: Sequence[FieldFilter]
) -> tuple[Filter, ...]:
    """Translate field filters on ``type_id`` into storage filters (combined with AND).

    Paths resolve as described in the module docstring; comparison values are converted with
    :func:`~workbench.runtime.values.coerce_value` (enum names become keys, dates become aware
    UTC datetimes, ...). Every problem (unknown attribute, association or record field,
    operator not applicable, bad value) is collected into one :class:`ValidationError` whose
    details name the filter (``filter[1]``), the path, the type and what would be valid.
    """
    model.type(type_id)
    errors = ErrorCollector()
    out: list[Filter] = []
    for index, item in enumerate(filters):
        try:
            out.append(_compile_one(model, type_id, item))
        except _PathError as exc:
            errors.add(exc.message, f"filter[{index}]", item.attribute_path)
    count = len(errors.details)
    errors.raise_if_any(
        ValidationError, f"{count} invalid filter{'s' if count != 1 else ''} on {type_id}"
    )
    return tuple(out)


def compile_sort(
    model: CkModel, type_id: str, sort: Sequence[tuple[str, bool]]
) -> tuple[SortKey, ...]:
    """Translate ``(attribute path, descending)`` pairs into sort keys.

    Scalar attributes (enums sort by key, TimeSpans by length), record paths through Record
    attributes and system fields can be sorted by; arrays, records, points, binary values,
    paths through a RecordArray and paths across associations cannot.
    """
    model.type(type_id)
    errors = ErrorCollector()
    out: list[SortKey] = []
    for index, (path, descending) in enumerate(sort):
        try:
            resolved = _resolve(model, type_id, path)
            value_type = resolved.attribute.value_type
            if resolved.hops:
                raise _PathError(
                    f"cannot sort by '{path}': sorting across associations is not supported; "
                    "sort by an attribute of the queried type"
                )
            if resolved.through_array:
                raise _PathError(
                    f"cannot sort by '{path}': it goes through a RecordArray, which holds "
                    "several values"
                )
            if value_type not in _SORTABLE:
                raise _PathError(
                    f"cannot sort by '{path}' of {resolved.owner}: it is a {value_type}; sort by "
                    "a single value (string, number, boolean, date-time, TimeSpan, enum) or a "
                    "record field such as 'phaseL1.voltage'"
                )
        except _PathError as exc:
            errors.add(exc.message, f"sort[{index}]", path)
            continue
        out.append(SortKey(resolved.storage_path, bool(descending)))
    errors.raise_if_any(ValidationError, f"invalid sort on {type_id}")
    return tuple(out)


def compile_search(
    model: CkModel, type_id: str, term: str, attribute_paths: Sequence[str] = ()
) -> TextSearch:
    """A case-insensitive substring search of ``term`` over String attributes of ``type_id``.

    ``attribute_paths`` name String attributes, record fields through Record attributes or the
    string system fields; when empty, every String attribute of the type is searched.
    """
    ck_type = model.type(type_id)
    if not isinstance(term, str) or not term.strip():
        raise ValidationError(f"search term {term!r} is empty; give some text to search for")
    if not attribute_paths:
        paths = tuple(
            ("attributes", a.name)
            for a in ck_type.attributes.values()
            if a.value_type is ValueType.STRING
        )
        if not paths:
            raise ValidationError(f"{type_id} has no String attributes to search in")
        return TextSearch(term, paths)
    errors = ErrorCollector()
    resolved_paths: list[Path] = []
    for index, path in enumerate(attribute_paths):
        try:
            resolved = _resolve(model, type_id, path)
            if resolved.hops or resolved.through_array:
                raise _PathError(
                    f"cannot search in '{path}': text search covers attributes of the queried "
                    "type and its Record fields, not associations or RecordArrays"
                )
            if resolved.attribute.value_type is not ValueType.STRING:
                strings = sorted(
                    graphql_field_name(a.name)
                    for a in ck_type.attributes.values()
                    if a.value_type is ValueType.STRING
                )
                raise _PathError(
                    f"cannot search in '{path}' of {type_id}: it is a "
                    f"{resolved.attribute.value_type}, and text search covers String "
                    f"attributes only ({', '.join(strings) or 'none on this type'})"
                )
        except _PathError as exc:
            errors.add(exc.message, f"searchFilter.attributePaths[{index}]", path)
            continue
        resolved_paths.append(resolved.storage_path)
    errors.raise_if_any(ValidationError, f"invalid search on {type_id}")
    return TextSearch(term, tuple(dict.fromkeys(resolved_paths)))
