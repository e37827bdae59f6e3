"""Query compilation of the SQLite entity store: SQL functions registered on each connection,
storage paths resolved to SQL expressions and the :class:`_Compiler` of WHERE, ORDER BY and
keyset clauses.

Queries compile to SQL with every value bound as a parameter. Storage paths and type ids are
model identifiers: they are checked against strict patterns and then written into the SQL as
quoted literals, because SQLite matches expression and partial indexes only against literal SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from workbench.errors import (
    ValidationError,
)
from workbench.query.cursor import decode_cursor
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    EntityQuery,
    Filter,
    Operator,
    Path,
    SortKey,
    TextSearch,
)
from workbench.storage.base import (
    StoredEntity,
)
from workbench.storage.encoding import (
    DATETIME_MARKER,
)
from workbench.storage.sqlite_codec import (
    _encode_scalar,
    encode_json,
    format_datetime,
)

_SYSTEM_COLUMNS = {
    "rtId": "rt_id",
    "ckTypeId": "ck_type_id",
    "rtWellKnownName": "rt_well_known_name",
    "rtVersion": "rt_version",
    "rtCreationDateTime": "rt_creation_datetime",
    "rtChangedDateTime": "rt_changed_datetime",
}
_DATETIME_COLUMNS = frozenset({"rtCreationDateTime", "rtChangedDateTime"})
_PATH_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
_TYPE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/@:]*")


# --- SQL functions ----------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=512)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _plain_string(value: object, encoded: int) -> str | None:
    """The user string behind a stored value, or None when it is not a string."""
    if not isinstance(value, str):
        return None
    if encoded and value.startswith("$"):
        if value.startswith(DATETIME_MARKER):
            return None
        if value.startswith("$$"):
            return value[1:]
    return value


def _sql_like(value: object, pattern: object, encoded: int) -> int:
    text = _plain_string(value, encoded)
    if text is None or not isinstance(pattern, str):
        return 0
    return 1 if _like_regex(pattern).fullmatch(text) else 0


def _sql_regexp(value: object, pattern: object, encoded: int) -> int:
    text = _plain_string(value, encoded)
    if text is None or not isinstance(pattern, str):
        return 0
    return 1 if _compile_regex(pattern).search(text) else 0


def _sql_contains(value: object, term: object, encoded: int) -> int:
    text = _plain_string(value, encoded)
    if text is None or not isinstance(term, str):
        return 0
    return 1 if term.casefold() in text.casefold() else 0


# --- query compilation ------------------------------------------------------------------------


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_type_id(type_id: object) -> str:
    if type(type_id) is str and type_id in _CHECKED_TYPE_IDS:
        return type_id
    if not isinstance(type_id, str) or not _TYPE_ID.fullmatch(type_id):
        raise ValidationError(
            f"type id {type_id!r} is not valid; type ids look like 'Demo.Energy/EnergyMeter' "
            "(letters, digits, '_', '.', '-', '/', '@', ':')"
        )
    if type(type_id) is str and len(_CHECKED_TYPE_IDS) < 4096:
        _CHECKED_TYPE_IDS.add(type_id)
    return type_id


#: type ids that passed :func:`_check_type_id` (a model has a bounded number of them)
_CHECKED_TYPE_IDS: set[str] = set()


def _types_in(column: str, type_ids: Iterable[str]) -> str:
    literals = ", ".join(_quote_literal(_check_type_id(t)) for t in sorted(set(type_ids)))
    return f"{column} IN ({literals})"


def _types_any(column: str, type_ids: Iterable[str]) -> str:
    """The type term of a partial model index: ``(column = 'A' OR column = 'B')``.

    Not ``column IN (...)``: SQLite evaluates a partial index's WHERE for every row written, and
    for an IN list of more than two literals that means building a temporary b-tree of the list
    per row and index, which cost a bulk import more than the index insert itself. Queries
    state the same term literally so that the planner can use the index.
    """
    terms = [f"{column} = {_quote_literal(_check_type_id(t))}" for t in sorted(set(type_ids))]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


@dataclass(frozen=True)
class _Target:
    """A storage path resolved to SQL: ``kind`` says how comparison values are encoded."""

    sql: str
    kind: Literal["attribute", "datetime", "column"]
    json_path: str = ""
    #: the JSON column the path reads (``e.attributes``, or ``el1.value`` inside an array)
    column: str = ""

    def encode(self, value: Any) -> Any:
        if self.kind == "attribute":
            if isinstance(value, dict | list):
                return encode_json(value)
            return _encode_scalar(value)
        if self.kind == "datetime" and isinstance(value, datetime):
            return format_datetime(value)
        return _encode_scalar(value)

    @property
    def encoded(self) -> int:
        return 1 if self.kind == "attribute" else 0


def _resolve(path: Path, alias: str | None, column: str = "attributes") -> _Target:
    """The SQL for ``path``; ``column`` is the JSON column (``value`` inside json_each)."""
    prefix = f"{alias}." if alias else ""
    if not isinstance(path, tuple) or not path:
        raise ValidationError(f"storage path {path!r} is empty; name a system field or attribute")
    if len(path) == 1 and path[0] in _SYSTEM_COLUMNS:
        kind: Literal["datetime", "column"] = (
            "datetime" if path[0] in _DATETIME_COLUMNS else "column"
        )
        return _Target(prefix + _SYSTEM_COLUMNS[path[0]], kind)
    if len(path) >= 2 and path[0] == "attributes":
        for key in path[1:]:
            if not isinstance(key, str) or not _PATH_KEY.fullmatch(key):
                raise ValidationError(
                    f"storage path {path!r} has an invalid key {key!r}; attribute names use "
                    "letters, digits, '_' and '-'"
                )
        json_path = _quote_literal("$" + "".join(f'."{key}"' for key in path[1:]))
        return _Target(
            f"json_extract({prefix}{column}, {json_path})", "attribute", json_path, prefix + column
        )
    raise ValidationError(
        f"storage path {path!r} is not known; use a system field "
        f"({', '.join(sorted(_SYSTEM_COLUMNS))}) or ('attributes', name, ...)"
    )


def _value_at(entity: StoredEntity, path: Path) -> Any:
    if len(path) == 1:
        return {
            "rtId": entity.rt_id,
            "ckTypeId": entity.ck_type_id,
            "rtWellKnownName": entity.rt_well_known_name,
            "rtVersion": entity.rt_version,
            "rtCreationDateTime": entity.rt_creation_datetime,
            "rtChangedDateTime": entity.rt_changed_datetime,
        }[path[0]]
    value: Any = entity.attributes
    for key in path[1:]:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class _Compiler:
    """Builds one SQL statement's WHERE/ORDER BY with named, bound parameters."""

    def __init__(self, index_type_sets: Iterable[tuple[str, ...]] = ()) -> None:
        self.params: dict[str, Any] = {}
        self._aliases = 0
        self._elements = 0
        self._index_type_sets = tuple(index_type_sets)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def where(self, query: EntityQuery, alias: str = "e") -> list[str]:
        parts: list[str] = []
        if not query.include_archived:
            parts.append(f"{alias}.archived = 0")
        if query.type_ids is not None:
            wanted = set(query.type_ids)
            if not wanted:
                return ["0"]
            parts.append(_types_in(f"{alias}.ck_type_id", wanted))
            # A partial model index applies only when the query states its WHERE term
            # literally; the types asked for are a subset, so adding that term changes nothing.
            for index_types in self._index_type_sets:
                if wanted <= set(index_types):
                    parts.append(_types_any(f"{alias}.ck_type_id", index_types))
        if query.rt_ids is not None:
            ids = json.dumps(list(query.rt_ids))
            parts.append(f"{alias}.rt_id IN (SELECT value FROM json_each({self.bind(ids)}))")
        parts.extend(self.filters(query.filters, alias))
        return parts

    def filters(self, filters: Iterable[Filter], alias: str) -> list[str]:
        out: list[str] = []
        for item in filters:
            if isinstance(item, Condition):
                out.append(self.condition(item, alias))
            elif isinstance(item, AssociationCondition):
                out.append(self.association(item, alias))
            elif isinstance(item, TextSearch):
                out.append(self.text_search(item, alias))
            else:
                raise ValidationError(f"{item!r} is not a filter of workbench.query")
        return out

    def condition(self, condition: Condition, alias: str, column: str = "attributes") -> str:
        if ANY_ELEMENT in condition.path:
            return self._through_array(condition, alias, column)
        target = _resolve(condition.path, alias, column)
        op, value, x = condition.operator, condition.value, target.sql
        where = f"{'.'.join(condition.path)} {op}"
        if op is Operator.IS_NULL:
            return f"{x} IS NULL"
        if op is Operator.IS_NOT_NULL:
            return f"{x} IS NOT NULL"
        if op is Operator.EQUALS:
            return f"{x} IS NULL" if value is None else f"{x} = {self.bind(target.encode(value))}"
        if op is Operator.NOT_EQUALS:
            return f"{x} IS NOT {self.bind(target.encode(value))}"
        if op in _COMPARISONS:
            _require(value is not None, where, "needs a value to compare with")
            return f"{x} {_COMPARISONS[op]} {self.bind(target.encode(value))}"
        if op in (Operator.IN, Operator.NOT_IN):
            _require(isinstance(value, list | tuple | set | frozenset), where, "needs a list")
            present = [self.bind(target.encode(v)) for v in value if v is not None]
            has_null = any(v is None for v in value)
            listed = f"{x} IN ({', '.join(present)})"
            if op is Operator.IN:
                return f"({listed} OR {x} IS NULL)" if has_null else listed
            if has_null:
                return f"({x} IS NOT NULL AND NOT {listed})"
            return f"({x} IS NULL OR NOT {listed})"
        if op is Operator.BETWEEN:
            _require(
                isinstance(value, list | tuple) and len(value) == 2 and None not in value,
                where,
                "needs a two-item list [low, high]",
            )
            low, high = (self.bind(target.encode(v)) for v in value)
            return f"{x} BETWEEN {low} AND {high}"
        if op in (Operator.LIKE, Operator.ANY_LIKE):
            _require(isinstance(value, str), where, "needs a string pattern (% and _ wildcards)")
            pattern = self.bind(value)
            if op is Operator.LIKE or target.kind != "attribute":
                return f"wb_like({x}, {pattern}, {target.encoded})"
            return self._any(target, alias, f"wb_like(j.value, {pattern}, 1)")
        if op is Operator.MATCH_REG_EX:
            _require(isinstance(value, str), where, "needs a regular expression string")
            try:
                _compile_regex(value)
            except re.error as exc:
                raise ValidationError(
                    f"{where}: {value!r} is not a valid regular expression ({exc}); "
                    "use Python re syntax"
                ) from None
            return f"wb_regexp({x}, {self.bind(value)}, {target.encoded})"
        if op is Operator.ANY_EQ:
            _require(value is not None, where, "needs a value; use IS_NULL for missing values")
            bound = self.bind(target.encode(value))
            if target.kind != "attribute":
                return f"{x} = {bound}"
            return self._any(target, alias, f"j.value = {bound}")
        raise ValidationError(f"operator {op!r} is not supported")

    def _any(self, target: _Target, alias: str, predicate: str) -> str:
        source = f"json_each({target.column}, {target.json_path})"
        return f"EXISTS (SELECT 1 FROM {source} AS j WHERE {predicate})"

    def _through_array(self, condition: Condition, alias: str, column: str) -> str:
        """Some element of the array satisfies the rest of the path (none, for negations)."""
        cut = condition.path.index(ANY_ELEMENT)
        array = _resolve(condition.path[:cut], alias, column)
        if condition.operator in (Operator.IS_NULL, Operator.IS_NOT_NULL):
            raise ValidationError(
                f"{'.'.join(condition.path)}: {condition.operator} does not take a path through "
                "an array; test the array itself"
            )
        negated = {Operator.NOT_EQUALS: Operator.EQUALS, Operator.NOT_IN: Operator.IN}
        operator = negated.get(condition.operator, condition.operator)
        self._elements += 1
        element = f"el{self._elements}"
        inner = self.condition(
            Condition(("attributes", *condition.path[cut + 1 :]), operator, condition.value),
            element,
            "value",
        )
        source = f"json_each({array.column}, {array.json_path})"
        exists = f"EXISTS (SELECT 1 FROM {source} AS {element} WHERE {inner})"
        return f"NOT {exists}" if condition.operator in negated else exists

    def text_search(self, search: TextSearch, alias: str) -> str:
        if not isinstance(search.term, str):
            raise ValidationError(f"text search term {search.term!r} must be a string")
        if not search.paths:
            raise ValidationError("text search needs at least one attribute path to search in")
        term = self.bind(search.term)
        alternatives = []
        for path in search.paths:
            target = _resolve(path, alias)
            alternatives.append(f"wb_contains({target.sql}, {term}, {target.encoded})")
        return "(" + " OR ".join(alternatives) + ")"

    def association(self, condition: AssociationCondition, alias: str) -> str:
        if condition.direction not in ("outbound", "inbound"):
            raise ValidationError(
                f"association direction {condition.direction!r} must be 'outbound' or 'inbound'"
            )
        self._aliases += 1
        link, other = f"a{self._aliases}", f"e{self._aliases}"
        near, far = ("source_rt_id", "target_rt_id")
        if condition.direction == "inbound":
            near, far = far, near
        parts = [
            f"{link}.{near} = {alias}.rt_id",
            f"{link}.role_id = {self.bind(condition.role_id)}",
            f"{other}.archived = 0",
            *self.filters(condition.filters, other),
        ]
        return (
            f"EXISTS (SELECT 1 FROM associations AS {link} JOIN entities AS {other} "
            f"ON {other}.rt_id = {link}.{far} WHERE {' AND '.join(parts)})"
        )

    def keyset(self, sort: Sequence[SortKey], targets: Sequence[_Target], cursor: str) -> str:
        """Rows strictly after the cursor row in ``sort`` (missing values first ascending,
        last descending, as SQLite orders NULLs)."""
        values = decode_cursor(cursor, len(sort), sort=sort)
        encoded = [t.encode(v) for t, v in zip(targets, values, strict=True)]
        disjuncts: list[str] = []
        equal: list[str] = []
        for key, target, value in zip(sort, targets, encoded, strict=True):
            x = target.sql
            bound = None if value is None else self.bind(value)
            if key.descending:
                after = None if bound is None else f"({x} < {bound} OR {x} IS NULL)"
            else:
                after = f"{x} IS NOT NULL" if bound is None else f"{x} > {bound}"
            if after is not None:
                disjuncts.append(" AND ".join([*equal, after]))
            equal.append(f"{x} IS NULL" if bound is None else f"{x} = {bound}")
        predicate = "(" + " OR ".join(f"({d})" for d in disjuncts) + ")" if disjuncts else "0"
        # A redundant bound on the leading key lets SQLite seek an index instead of scanning.
        first, lead = sort[0], encoded[0]
        if not first.descending and lead is not None:
            predicate = f"{targets[0].sql} >= {self.bind(lead)} AND {predicate}"
        elif first.descending and lead is None:
            predicate = f"{targets[0].sql} IS NULL AND {predicate}"
        return predicate


_COMPARISONS = {
    Operator.LESS_THAN: "<",
    Operator.LESS_EQUAL_THAN: "<=",
    Operator.GREATER_THAN: ">",
    Operator.GREATER_EQUAL_THAN: ">=",
}


def _require(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ValidationError(f"filter {where} {what}")
