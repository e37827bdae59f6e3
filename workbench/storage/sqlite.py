"""The embedded entity store: one SQLite file per tenant (stdlib ``sqlite3``, WAL, JSON1).

Layout: ``entities`` has real columns for the system fields and the attributes as a JSON text
column; ``associations`` holds links (primary key over role, source and target, indexed from both
ends); ``meta`` holds JSON documents by ``(namespace, key)``; ``model_indexes`` remembers the
index specs behind the ``mdl_*`` expression indexes.

Attribute JSON shape: plain JSON, except that a timezone-aware ``datetime`` is the string
``"$dt:YYYY-MM-DDTHH:MM:SS.ffffffZ"`` (UTC, fixed width, so it sorts lexically and compares with
``<``/``>``), and a string that itself begins with ``$dt:`` or ``$$`` is stored with one extra
leading ``$``. System datetime columns hold the same fixed-width text without the marker.

Queries compile to SQL with every value bound as a parameter. Storage paths and type ids are
model identifiers: they are checked against strict patterns and then written into the SQL as
quoted literals, because SQLite matches expression and partial indexes only against literal SQL.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Any, Literal

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    NotFound,
    StoreLocked,
    ValidationError,
    WorkbenchError,
)
from workbench.query.aggregation import AggregationResult, EntityAggregation
from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    EntityQuery,
    Filter,
    Operator,
    Page,
    Path,
    SortKey,
    TextSearch,
)
from workbench.storage.base import (
    EntityStore,
    IndexSpec,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)
from workbench.storage.encoding import (
    DATETIME_MARKER,
    ESCAPED_PREFIXES,
    escape_string,
    utc_text,
)

__all__ = ["SqliteEntityStore", "decode_json", "encode_json", "format_datetime"]

_SCHEME = "sqlite://"
_MEMORY = ":memory:"
_INDEX_PREFIX = "mdl_"
_PAGE_SIZE = 16384
_ANALYZE_MIN_ROWS = 1000  # re-analyze after this many inserts, or as many as the table held
#: ck_type_id given to rows being rewritten by a batch: no type id can equal it (see _TYPE_ID),
#: so the rows leave every partial unique index until their new values are written.
_PENDING_TYPE = " pending"

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
_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (?:index '([^']+)'|(.+))")

_ENTITY_COLUMNS = (
    "rt_id, ck_type_id, rt_well_known_name, rt_version, rt_creation_datetime,"
    " rt_changed_datetime, archived, attributes"
)
_ENTITY_COLUMNS_E = ", ".join("e." + column.strip() for column in _ENTITY_COLUMNS.split(","))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    rt_id TEXT NOT NULL PRIMARY KEY,
    ck_type_id TEXT NOT NULL,
    rt_well_known_name TEXT,
    rt_version INTEGER NOT NULL,
    rt_creation_datetime TEXT NOT NULL,
    rt_changed_datetime TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sys_entities_type ON entities (ck_type_id, rt_id);
CREATE UNIQUE INDEX IF NOT EXISTS sys_entities_well_known_name ON entities (rt_well_known_name)
    WHERE archived = 0 AND rt_well_known_name IS NOT NULL;
CREATE TABLE IF NOT EXISTS associations (
    role_id TEXT NOT NULL,
    source_rt_id TEXT NOT NULL,
    source_ck_type_id TEXT NOT NULL,
    target_rt_id TEXT NOT NULL,
    target_ck_type_id TEXT NOT NULL,
    PRIMARY KEY (role_id, source_rt_id, target_rt_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sys_associations_source ON associations (source_rt_id, role_id);
CREATE INDEX IF NOT EXISTS sys_associations_target ON associations (target_rt_id, role_id);
CREATE TABLE IF NOT EXISTS meta (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_indexes (name TEXT NOT NULL PRIMARY KEY, spec TEXT NOT NULL);
"""


# --- value encoding -------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """``value`` in UTC as fixed-width ISO text with microseconds (``...T08:00:00.000000Z``)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"datetime {value.isoformat()} has no timezone; pass a timezone-aware datetime "
            "(e.g. datetime.now(UTC))"
        )
    return utc_text(value)


#: the system datetime last formatted by :func:`_stamp_text` and its text, as one tuple that
#: is replaced whole (so threads never see a datetime with another's text)
_LAST_STAMP: list[tuple[object, str]] = [(object(), "")]


def _stamp_text(value: datetime) -> str:
    """:func:`format_datetime` of an entity's creation/change datetime: a batch stamps every
    entity with the same datetime object, so the last one is remembered by identity (the
    reference held here keeps the object alive, so its identity cannot be reused)."""
    last = _LAST_STAMP[0]
    if value is last[0]:
        return last[1]
    text = format_datetime(value)
    _LAST_STAMP[0] = (value, text)
    return text


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _encode_scalar(value: Any) -> Any:
    """A JSON-stored scalar as SQLite sees it through ``json_extract``."""
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return DATETIME_MARKER + format_datetime(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"the number {value!r} cannot be stored or compared; use a finite value"
        )
    if value is None or isinstance(value, int | float):
        return value
    raise ValidationError(
        f"{value!r} ({type(value).__name__}) is not a comparable scalar; "
        "use str, int, float, bool or a timezone-aware datetime"
    )


def _encode_tree(value: Any) -> Any:
    if isinstance(value, str):  # escape_string, inlined: this walks every value of a document
        return "$" + value if value.startswith(ESCAPED_PREFIXES) else value
    if isinstance(value, dict):
        return {str(key): _encode_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_tree(item) for item in value]
    if isinstance(value, datetime):
        return DATETIME_MARKER + format_datetime(value)
    return value


class _DatetimeCount(threading.local):
    """Datetimes converted by the current thread's encode_json call."""

    value = 0


_DATETIMES = _DatetimeCount()


def _json_default(value: object) -> str:
    if type(value) is datetime and value.tzinfo is UTC:  # what the entity service stores
        _DATETIMES.value += 1
        return DATETIME_MARKER + utc_text(value)
    if isinstance(value, datetime):
        _DATETIMES.value += 1
        return DATETIME_MARKER + format_datetime(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


# One C encoder built once with json.dumps' compact settings (ensure_ascii=False,
# allow_nan=False): json.dumps builds a new encoder per call, which costs more than encoding a
# small document. Without a markers dict it cannot detect cycles; a cyclic document ends in
# RecursionError, and encode_json then lets json.dumps report it.
_C_ENCODER: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def _dumps_fast(document: Any) -> str:
    if _C_ENCODER is None:  # pragma: no cover - CPython always has the C encoder
        return _DUMPS(document, default=_json_default)
    chunks = _C_ENCODER(document, 0)
    return chunks[0] if len(chunks) == 1 else "".join(chunks)


def encode_json(document: Any) -> str:
    """``document`` as the JSON text this store writes (see the module docstring)."""
    counter = _DATETIMES
    counter.value = 0
    try:
        try:
            text = _dumps_fast(document)
        except RecursionError:
            # a cycle (or absurd nesting): json.dumps names it ("Circular reference detected")
            counter.value = 0
            text = _DUMPS(document, default=_json_default)
        # Fast path: the C encoder did all the work unless a string of the caller's starts with
        # a marker ("$dt:" or "$$"), which needs escaping. Every '"$dt:' beyond the datetimes
        # we converted, or any '"$$', sends the document through the exact (slower) walk.
        if '"$' in text and (text.count('"' + DATETIME_MARKER) != counter.value or '"$$' in text):
            text = _DUMPS(_encode_tree(document))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"value cannot be stored as JSON ({exc}); use str, int, float, bool, None, lists, "
            "dicts and timezone-aware datetimes"
        ) from None
    return text


def _DUMPS(document: Any, default: Any = None) -> str:
    return json.dumps(
        document, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=default
    )


def _decode_list(items: list[Any]) -> list[Any]:
    for i, item in enumerate(items):
        if type(item) is str:
            if item[:1] == "$":
                items[i] = _decode_string(item)
        elif type(item) is list:
            _decode_list(item)
    return items


def _decode_string(value: str) -> Any:
    if value.startswith(DATETIME_MARKER):
        return _parse_datetime(value[len(DATETIME_MARKER) :])
    return value[1:] if value.startswith("$$") else value


def _decode_object(document: dict[str, Any]) -> dict[str, Any]:
    # json calls this bottom-up for every object, so nested objects are already decoded.
    for key, value in document.items():
        if type(value) is str:
            if value[:1] == "$":
                document[key] = _decode_string(value)
        elif type(value) is list:
            _decode_list(value)
    return document


def decode_json(text: str) -> Any:
    """The inverse of :func:`encode_json`."""
    # A marker always shows up as '"$' in the text; skip the hook when there is none.
    if '"$' not in text:
        return json.loads(text)
    return json.loads(text, object_hook=_decode_object)


def _display(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith(DATETIME_MARKER):
            return _parse_datetime(value[len(DATETIME_MARKER) :]).isoformat()
        return repr(value[1:] if value.startswith("$$") else value)
    return repr(value)


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


# --- the store --------------------------------------------------------------------------------


def _row_to_entity(row: tuple[Any, ...]) -> StoredEntity:
    rt_id, ck_type_id, well_known_name, version, created, changed, archived, attributes = row
    return StoredEntity(
        rt_id=rt_id,
        ck_type_id=ck_type_id,
        attributes=decode_json(attributes),
        rt_version=version,
        rt_creation_datetime=_parse_datetime(created),
        rt_changed_datetime=_parse_datetime(changed),
        rt_well_known_name=well_known_name,
        archived=bool(archived),
    )


def _entity_row(entity: StoredEntity) -> tuple[Any, ...]:
    rt_id = entity.rt_id
    if not isinstance(rt_id, str) or not rt_id:
        raise ValidationError(f"entity rtId {rt_id!r} must be a non-empty string")
    ck_type_id = _check_type_id(entity.ck_type_id)
    if not isinstance(entity.attributes, dict):
        raise ValidationError(f"attributes of entity {rt_id} must be a dict")
    try:
        attributes = encode_json(entity.attributes)
        created = _stamp_text(entity.rt_creation_datetime)
        changed = _stamp_text(entity.rt_changed_datetime)
    except ValidationError as exc:
        raise ValidationError(f"entity {rt_id}: {exc.message}") from None
    return (
        rt_id,
        ck_type_id,
        entity.rt_well_known_name,
        int(entity.rt_version),
        created,
        changed,
        1 if entity.archived else 0,
        attributes,
    )


def _spec_to_json(spec: IndexSpec) -> str:
    return json.dumps(
        {"name": spec.name, "kind": spec.kind, "type_ids": spec.type_ids, "paths": spec.paths}
    )


def _spec_from_json(text: str) -> IndexSpec:
    data = json.loads(text)
    return IndexSpec(
        data["name"],
        data["kind"],
        tuple(data["type_ids"]),
        tuple(tuple(path) for path in data["paths"]),
    )


def _index_name(spec: IndexSpec) -> str:
    return _INDEX_PREFIX + spec.name


def _index_where(spec: IndexSpec, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    where = _types_any(f"{prefix}ck_type_id", spec.type_ids)
    if spec.kind == "unique_not_deleted":
        where += f" AND {prefix}archived = 0"
    return where


def _index_ddl(spec: IndexSpec) -> str:
    columns = [_resolve(path, None).sql for path in spec.paths]
    unique = spec.kind in ("unique", "unique_not_deleted")
    if not unique and columns[-1] != "rt_id":
        columns.append("rt_id")  # serves ORDER BY key, rtId and keyset seeks without a sort
    return (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {_quote_identifier(_index_name(spec))} "
        f"ON entities ({', '.join(columns)}) WHERE {_index_where(spec)}"
    )


def _check_spec(spec: IndexSpec) -> None:
    if not isinstance(spec.name, str) or not spec.name or "\x00" in spec.name:
        raise ValidationError(f"index name {spec.name!r} must be a non-empty string")
    if spec.kind not in ("ascending", "text", "unique", "unique_not_deleted"):
        raise ValidationError(
            f"index {spec.name!r} has kind {spec.kind!r}; use ascending, text, unique or "
            "unique_not_deleted"
        )
    if not spec.type_ids:
        raise ValidationError(f"index {spec.name!r} covers no types; list its type ids")
    if not spec.paths:
        raise ValidationError(f"index {spec.name!r} has no paths; list the indexed paths")
    for type_id in spec.type_ids:
        _check_type_id(type_id)
    for path in spec.paths:
        _resolve(path, None)


class SqliteEntityStore(EntityStore):
    """The entity store in one SQLite file (or in memory), safe to share between threads.

    Every :meth:`apply` runs in one ``BEGIN IMMEDIATE`` transaction, so
    :meth:`supports_transactions` is True: a failing batch changes nothing.
    """

    def __init__(self, path: str, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.path = path
        self._lock = threading.RLock()
        self._specs: dict[str, IndexSpec] = {}
        self._written = 0
        self._rows_at_analyze = 0
        try:
            if path != _MEMORY:
                FilePath(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                path,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=512,
            )
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"cannot open the SQLite entity store at {path!r} ({exc}); check that the "
                "directory exists and is writable"
            ) from exc
        try:
            self._setup(self._conn)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    @classmethod
    def open(cls, url: str, **options: Any) -> SqliteEntityStore:
        """Open ``sqlite:///absolute/path.db`` (parent directories are created) or
        ``sqlite:///:memory:``. Option: ``timeout`` (seconds to wait for another writer)."""
        if not url.startswith(_SCHEME + "/"):
            raise ValidationError(
                f"SQLite URL {url!r} must look like sqlite:///absolute/path.db or "
                "sqlite:///:memory:"
            )
        rest = url[len(_SCHEME) :]
        path = _MEMORY if rest == "/" + _MEMORY else rest
        if "?" in path or "\x00" in path:
            raise ValidationError(f"SQLite URL {url!r} must not carry a query string")
        unknown = set(options) - {"timeout"}
        if unknown:
            raise ValidationError(
                f"unknown SQLite entity store option(s) {sorted(unknown)}; known: timeout"
            )
        return cls(path, url, timeout=float(options.get("timeout", 30.0)))

    def _setup(self, conn: sqlite3.Connection) -> None:
        with self._translate():
            # for a new file only (before WAL): bigger pages make bulk writes cheaper
            conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            if self.path != _MEMORY:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=268435456")
            conn.create_function("wb_like", 3, _sql_like, deterministic=True)
            conn.create_function("wb_regexp", 3, _sql_regexp, deterministic=True)
            conn.create_function("wb_contains", 3, _sql_contains, deterministic=True)
            with self._transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                rows = conn.execute("SELECT spec FROM model_indexes").fetchall()
                self._specs = {spec.name: spec for spec in (_spec_from_json(r[0]) for r in rows)}
                rebuilt = self._rebuild_outdated_indexes(conn)
            if rebuilt:
                self._analyze(conn)
            self._rows_at_analyze = int(
                conn.execute("SELECT max(rowid) FROM entities").fetchone()[0] or 0
            )

    def _rebuild_outdated_indexes(self, conn: sqlite3.Connection) -> bool:
        """Recreate the model indexes an older version wrote with other DDL (once per file).

        Queries state each index's WHERE term literally, as :func:`_index_ddl` writes it now, so
        an index written differently (``ck_type_id IN (...)`` before) would go unused."""
        existing = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND name LIKE 'mdl\\_%' ESCAPE '\\'"
            ).fetchall()
        )
        rebuilt = False
        for spec in self._specs.values():
            name, ddl = _index_name(spec), _index_ddl(spec)
            if name in existing and existing[name] != ddl:
                conn.execute(f"DROP INDEX {_quote_identifier(name)}")
                conn.execute(ddl)
                rebuilt = True
        return rebuilt

    def __repr__(self) -> str:
        return f"SqliteEntityStore({self.url!r})"

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn sqlite3 errors into workbench errors."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"the write collides with stored data: {exc}") from exc
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreLocked(
                    f"the SQLite entity store {self.path!r} is locked by another writer "
                    f"({text}); retry, or raise the 'timeout' option"
                ) from exc
            raise WorkbenchError(f"SQLite entity store {self.path!r} failed: {text}") from exc
        except sqlite3.ProgrammingError as exc:
            raise BackendUnavailable(
                f"the SQLite entity store {self.path!r} is closed ({exc}); open it again"
            ) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"the SQLite entity store {self.path!r} cannot be used ({exc})"
            ) from exc
        except OverflowError as exc:
            raise ValidationError(f"a number is too large for the entity store: {exc}") from exc

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate():
            if self._conn is None:
                raise BackendUnavailable(
                    f"the SQLite entity store {self.url!r} is closed; open it again"
                )
            yield self._conn

    # --- the port ---------------------------------------------------------------------------

    def supports_transactions(self) -> bool:
        return True

    def apply(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        # Encode outside the lock: JSON work need not block other threads.
        inserts = [_entity_row(entity) for entity in batch.inserts]
        updates = [(_entity_row(entity), expected) for entity, expected in batch.updates]
        meta = [
            (
                write.namespace,
                write.key,
                None if write.document is None else encode_json(write.document),
            )
            for write in batch.meta
        ]
        with self._connection() as conn:
            with self._transaction(conn):
                self._apply(conn, batch, inserts, updates, meta)
            self._written += len(inserts)
            if self._written >= max(_ANALYZE_MIN_ROWS, self._rows_at_analyze):
                self._analyze(conn)

    def _analyze(self, conn: sqlite3.Connection) -> None:
        """Refresh the planner's statistics: without them SQLite may sort a whole type instead of
        walking a model index. A full ANALYZE (~0.4 s at a million entities; sampled statistics
        misjudge the type index) run each time the table doubles costs little over an import."""
        conn.execute("ANALYZE")
        row = conn.execute("SELECT max(rowid) FROM entities").fetchone()
        self._rows_at_analyze = int(row[0] or 0)
        self._written = 0

    def _apply(
        self,
        conn: sqlite3.Connection,
        batch: WriteBatch,
        inserts: list[tuple[Any, ...]],
        updates: list[tuple[tuple[Any, ...], int | None]],
        meta: list[tuple[str, str, str | None]],
    ) -> None:
        if batch.erase:
            ids = json.dumps(list(batch.erase))
            for column in ("source_rt_id", "target_rt_id"):
                conn.execute(
                    f"DELETE FROM associations WHERE {column} IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            conn.execute(
                "DELETE FROM entities WHERE rt_id IN (SELECT value FROM json_each(?))", (ids,)
            )
        if batch.remove_associations:
            conn.executemany(
                "DELETE FROM associations WHERE role_id = ? AND source_rt_id = ? "
                "AND target_rt_id = ?",
                [(a.role_id, a.source_rt_id, a.target_rt_id) for a in batch.remove_associations],
            )
        if updates:
            self._check_versions(conn, updates)
            if len(updates) > 1:
                # Take the rows out of every unique index first, so uniqueness is judged on the
                # state after the batch (two entities may swap values).
                conn.executemany(
                    "UPDATE entities SET ck_type_id = ?, rt_well_known_name = NULL WHERE rt_id = ?",
                    [(_PENDING_TYPE, row[0]) for row, _ in updates],
                )
            self._write(
                conn,
                "UPDATE entities SET ck_type_id = ?, rt_well_known_name = ?, rt_version = ?, "
                "rt_creation_datetime = ?, rt_changed_datetime = ?, archived = ?, attributes = ? "
                "WHERE rt_id = ?",
                [(*row[1:], row[0]) for row, _ in updates],
                [entity for entity, _ in batch.updates],
            )
        if inserts:
            self._check_new_ids(conn, [row[0] for row in inserts])
            self._write(
                conn,
                f"INSERT INTO entities ({_ENTITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
                [*batch.inserts, *(entity for entity, _ in batch.updates)],
            )
        if batch.add_associations:
            conn.executemany(
                "INSERT OR IGNORE INTO associations (role_id, source_rt_id, source_ck_type_id, "
                "target_rt_id, target_ck_type_id) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        a.role_id,
                        a.source_rt_id,
                        a.source_ck_type_id,
                        a.target_rt_id,
                        a.target_ck_type_id,
                    )
                    for a in batch.add_associations
                ],
            )
        for namespace, key, document in meta:
            if document is None:
                conn.execute("DELETE FROM meta WHERE namespace = ? AND key = ?", (namespace, key))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (namespace, key, document) VALUES (?, ?, ?)",
                    (namespace, key, document),
                )

    def _check_versions(
        self, conn: sqlite3.Connection, updates: list[tuple[tuple[Any, ...], int | None]]
    ) -> None:
        ids = json.dumps([row[0] for row, _ in updates])
        stored = dict(
            conn.execute(
                "SELECT rt_id, rt_version FROM entities "
                "WHERE rt_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
        )
        for row, expected in updates:
            rt_id = row[0]
            if rt_id not in stored:
                raise NotFound(
                    f"entity {rt_id} cannot be updated: it does not exist (it may have been "
                    "erased); insert it as a new entity or re-read the data"
                )
            if expected is not None and stored[rt_id] != expected:
                raise Conflict(
                    f"entity {rt_id} was changed concurrently: the update expected rtVersion "
                    f"{expected} but the stored rtVersion is {stored[rt_id]}; re-read the "
                    "entity and retry the update"
                )

    def _check_new_ids(self, conn: sqlite3.Connection, rt_ids: list[str]) -> None:
        seen: set[str] = set()
        for rt_id in rt_ids:
            if rt_id in seen:
                raise Conflict(
                    f"entity {rt_id} is inserted twice in one batch; give each entity its own rtId"
                )
            seen.add(rt_id)
        existing = conn.execute(
            "SELECT rt_id FROM entities WHERE rt_id IN (SELECT value FROM json_each(?)) LIMIT 1",
            (json.dumps(rt_ids),),
        ).fetchone()
        if existing is not None:
            raise Conflict(
                f"entity {existing[0]} already exists; insert it with a new rtId or update the "
                "existing entity"
            )

    def _write(
        self,
        conn: sqlite3.Connection,
        sql: str,
        rows: list[tuple[Any, ...]],
        candidates: list[StoredEntity],
    ) -> None:
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            # Still inside the transaction: find the value that collides, then roll back.
            raise self._unique_conflict(conn, exc, candidates) from exc

    def _unique_conflict(
        self, conn: sqlite3.Connection, exc: sqlite3.IntegrityError, candidates: list[StoredEntity]
    ) -> Conflict:
        match = _UNIQUE_FAILED.match(str(exc))
        index = match.group(1) if match else None
        column = match.group(2) if match else None
        if column == "entities.rt_well_known_name":
            for entity in candidates:
                if entity.archived or entity.rt_well_known_name is None:
                    continue
                other = conn.execute(
                    "SELECT rt_id FROM entities WHERE rt_well_known_name = ? AND archived = 0 "
                    "AND rt_id <> ? LIMIT 1",
                    (entity.rt_well_known_name, entity.rt_id),
                ).fetchone()
                if other is not None:
                    return Conflict(
                        f"rtWellKnownName {entity.rt_well_known_name!r} of entity {entity.rt_id} "
                        f"is already used by entity {other[0]}; choose another name or archive "
                        "that entity first"
                    )
        if index and index.startswith(_INDEX_PREFIX) and index[len(_INDEX_PREFIX) :] in self._specs:
            spec = self._specs[index[len(_INDEX_PREFIX) :]]
            targets = [_resolve(path, None) for path in spec.paths]
            for entity in candidates:
                if entity.ck_type_id not in spec.type_ids:
                    continue
                if spec.kind == "unique_not_deleted" and entity.archived:
                    continue
                values = [
                    t.encode(_value_at(entity, p)) for t, p in zip(targets, spec.paths, strict=True)
                ]
                if any(v is None for v in values):
                    continue
                clauses = " AND ".join(f"{t.sql} = ?" for t in targets)
                other = conn.execute(
                    f"SELECT rt_id FROM entities WHERE {_index_where(spec)} AND {clauses} "
                    "AND rt_id <> ? LIMIT 1",
                    (*values, entity.rt_id),
                ).fetchone()
                if other is not None:
                    return _duplicate(spec, values, f"entity {entity.rt_id} and {other[0]}")
            return Conflict(f"unique index {spec.name!r} rejects a duplicate value ({exc})")
        return Conflict(f"the write collides with stored data ({exc}); re-read and retry")

    def get_many(
        self, rt_ids: Sequence[str], include_archived: bool = True
    ) -> dict[str, StoredEntity]:
        if not rt_ids:
            return {}
        hide = "" if include_archived else " AND archived = 0"
        with self._connection() as conn:
            if len(rt_ids) == 1:
                rows = conn.execute(
                    f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE rt_id = ?{hide}", (rt_ids[0],)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_ENTITY_COLUMNS} FROM entities "
                    f"WHERE rt_id IN (SELECT value FROM json_each(?)){hide}",
                    (json.dumps(list(rt_ids)),),
                ).fetchall()
        return {row[0]: _row_to_entity(row) for row in rows}

    def entity_types(self, rt_ids: Sequence[str], include_archived: bool = True) -> dict[str, str]:
        """rtId → ckTypeId of the stored entities among ``rt_ids``: :meth:`get_many` without
        decoding the entities (the entity service checks association targets with it)."""
        if not rt_ids:
            return {}
        hide = "" if include_archived else " AND archived = 0"
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT rt_id, ck_type_id FROM entities "
                f"WHERE rt_id IN (SELECT value FROM json_each(?)){hide}",
                (json.dumps(list(rt_ids)),),
            ).fetchall()
        return dict(rows)

    def get_by_well_known_name(self, name: str) -> StoredEntity | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM entities "
                "WHERE rt_well_known_name = ? AND archived = 0",
                (name,),
            ).fetchone()
        return None if row is None else _row_to_entity(row)

    def _compiler(self) -> _Compiler:
        type_sets = {tuple(sorted(set(spec.type_ids))) for spec in self._specs.values()}
        return _Compiler(sorted(type_sets))

    def _compile_find(
        self, query: EntityQuery
    ) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]] | None]:
        """The page statement and, when ``include_total``, the count statement of ``query``."""
        if query.first is not None and query.first < 0:
            raise ValidationError(f"first must be 0 or more, got {query.first}")
        sort = query.effective_sort()
        targets = [_resolve(key.path, "e") for key in sort]
        compiler = self._compiler()
        where = compiler.where(query)
        total = None
        if query.include_total:
            total_sql = f"SELECT count(*) FROM entities AS e WHERE {' AND '.join(where) or '1'}"
            total = (total_sql, dict(compiler.params))
        if query.after:
            where = [*where, compiler.keyset(sort, targets, query.after)]
        order = ", ".join(
            f"{t.sql} {'DESC' if k.descending else 'ASC'}"
            for k, t in zip(sort, targets, strict=True)
        )
        sql = (
            f"SELECT {_ENTITY_COLUMNS_E} FROM entities AS e "
            f"WHERE {' AND '.join(where) or '1'} ORDER BY {order}"
        )
        if query.first is not None:
            sql += f" LIMIT {compiler.bind(query.first + 1)}"
        return (sql, compiler.params), total

    def explain(self, query: EntityQuery) -> list[str]:
        """SQLite's query plan for :meth:`find` of ``query`` (one line per step), to check that
        a filter or sort is served by an index."""
        (sql, params), _ = self._compile_find(query)
        with self._connection() as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return [row[-1] for row in rows]

    def find(self, query: EntityQuery) -> Page[StoredEntity]:
        (sql, params), total_statement = self._compile_find(query)
        sort = query.effective_sort()
        total = None
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
            if total_statement is not None:
                total = conn.execute(*total_statement).fetchone()[0]
        has_next = query.first is not None and len(rows) > query.first
        if has_next:
            rows = rows[: query.first]
        items = [_row_to_entity(row) for row in rows]
        cursors = [
            encode_cursor([_value_at(entity, key.path) for key in sort], sort=sort)
            for entity in items
        ]
        return Page(
            items=items,
            has_next_page=has_next,
            end_cursor=cursors[-1] if cursors else None,
            cursors=cursors,
            total_count=total,
        )

    def count(self, query: EntityQuery) -> int:
        compiler = self._compiler()
        where = compiler.where(query)
        sql = f"SELECT count(*) FROM entities AS e WHERE {' AND '.join(where) or '1'}"
        with self._connection() as conn:
            result: int = conn.execute(sql, compiler.params).fetchone()[0]
        return result

    def aggregate(self, aggregation: EntityAggregation) -> AggregationResult:
        from workbench.storage.sqlite_aggregate import aggregate_sqlite  # it builds on this module

        return aggregate_sqlite(self, aggregation)

    def supports_aggregate_indexes(self) -> bool:
        return True

    def create_aggregate_index(self, aggregation: EntityAggregation) -> str:
        from workbench.storage.sqlite_aggregate import create_aggregate_index

        return create_aggregate_index(self, aggregation)

    def associations(
        self,
        rt_ids: Sequence[str],
        direction: Literal["outbound", "inbound"],
        role_id: str | None = None,
    ) -> list[StoredAssociation]:
        if direction not in ("outbound", "inbound"):
            raise ValidationError(f"direction {direction!r} must be 'outbound' or 'inbound'")
        if not rt_ids:
            return []
        column = "source_rt_id" if direction == "outbound" else "target_rt_id"
        sql = (
            "SELECT role_id, source_rt_id, source_ck_type_id, target_rt_id, target_ck_type_id "
            f"FROM associations WHERE {column} IN (SELECT value FROM json_each(?))"
        )
        params: tuple[Any, ...] = (json.dumps(list(rt_ids)),)
        if role_id is not None:
            sql += " AND role_id = ?"
            params = (*params, role_id)
        sql += " ORDER BY role_id, source_rt_id, target_rt_id"
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [StoredAssociation(*row) for row in rows]

    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        wanted: dict[str, tuple[IndexSpec, str]] = {}
        for spec in specs:
            _check_spec(spec)
            if _index_name(spec) in wanted:
                raise ValidationError(f"index name {spec.name!r} is listed twice")
            wanted[_index_name(spec)] = (spec, _index_ddl(spec))
        with self._connection() as conn, self._transaction(conn):
            existing = dict(
                conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND name LIKE 'mdl\\_%' ESCAPE '\\'"
                ).fetchall()
            )
            for name, ddl in existing.items():
                if name not in wanted or wanted[name][1] != ddl:
                    conn.execute(f"DROP INDEX {_quote_identifier(name)}")
            for name, (spec, ddl) in wanted.items():
                if existing.get(name) == ddl:
                    continue
                try:
                    conn.execute(ddl)
                except sqlite3.IntegrityError as exc:
                    raise self._existing_duplicate(conn, spec) from exc
            conn.execute("DELETE FROM model_indexes")
            conn.executemany(
                "INSERT INTO model_indexes (name, spec) VALUES (?, ?)",
                [(spec.name, _spec_to_json(spec)) for spec, _ in wanted.values()],
            )
            self._specs = {spec.name: spec for spec, _ in wanted.values()}
            self._analyze(conn)

    def _existing_duplicate(self, conn: sqlite3.Connection, spec: IndexSpec) -> Conflict:
        exprs = [_resolve(path, None).sql for path in spec.paths]
        present = " AND ".join(f"{x} IS NOT NULL" for x in exprs)
        row = conn.execute(
            f"SELECT {', '.join(exprs)}, count(*) FROM entities "
            f"WHERE {_index_where(spec)} AND {present} "
            f"GROUP BY {', '.join(exprs)} HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        values = list(row[:-1]) if row else []
        return _duplicate(spec, values, f"{row[-1]} entities" if row else "several entities")

    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT document FROM meta WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        if row is None:
            return None
        document: dict[str, Any] = decode_json(row[0])
        return document

    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT key, document FROM meta WHERE namespace = ? ORDER BY key", (namespace,)
            ).fetchall()
        return {key: decode_json(document) for key, document in rows}

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                with self._translate():
                    conn.execute("PRAGMA optimize")  # keep planner statistics fresh for next time
            finally:
                conn.close()

    def drop(self) -> None:
        self.close()
        if self.path == _MEMORY:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            FilePath(self.path + suffix).unlink(missing_ok=True)


def _duplicate(spec: IndexSpec, values: Sequence[Any], holders: str) -> Conflict:
    shown = ", ".join(_display(v) for v in values)
    paths = ", ".join(
        ".".join(path[1:] if path[0] == "attributes" else path) for path in spec.paths
    )
    scope = " among non-archived entities" if spec.kind == "unique_not_deleted" else ""
    return Conflict(
        f"unique index {spec.name!r} ({paths}) allows each value once{scope}, but {shown} is "
        f"held by {holders}; change or archive one of them"
    )
