"""Query compilation of the MongoDB entity store: storage paths to fields, conditions, text
search and keyset predicates to query documents.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from workbench.errors import (
    ValidationError,
)
from workbench.query.model import (
    ANY_ELEMENT,
    Condition,
    Operator,
    Path,
    SortKey,
    TextSearch,
)
from workbench.storage.mongo_codec import (
    Document,
    _encode,
)

#: first path element -> stored field, for the system fields queries may use
_SYSTEM_FIELDS = {
    "rtId": "_id",
    "ckTypeId": "ckTypeId",
    "rtWellKnownName": "rtWellKnownName",
    "rtVersion": "rtVersion",
    "rtCreationDateTime": "rtCreationDateTime",
    "rtChangedDateTime": "rtChangedDateTime",
    "archived": "archived",
}


def _field(path: Path, relative: bool = False) -> str:
    """The dotted field name of a storage path, refusing what would change the query's meaning.

    ``relative`` paths are inside an array element (``$elemMatch``) and have no ``attributes``
    head."""
    if not path:
        raise ValidationError("a filter or sort path is empty; name a system field or attribute")
    for part in path:
        if not part or "." in part or part.startswith("$") or "\x00" in part:
            raise ValidationError(
                f"path {'.'.join(path)!r} has an invalid element {part!r}; path elements must "
                "be non-empty and must not contain '.' or start with '$'"
            )
    if relative:
        return ".".join(path)
    head = path[0]
    if head in _SYSTEM_FIELDS:
        if len(path) > 1:
            raise ValidationError(f"system field {head!r} has no sub-fields (path {path!r})")
        return _SYSTEM_FIELDS[head]
    if head != "attributes" or len(path) < 2:
        raise ValidationError(
            f"path {path!r} is neither a system field ({', '.join(sorted(_SYSTEM_FIELDS))}) "
            "nor an attribute path starting with 'attributes'"
        )
    return ".".join(path)


def _escape_regex(text: str) -> str:
    # Escape ASCII punctuation only: a backslash before punctuation is a literal in both PCRE
    # (MongoDB) and RE2 (FerretDB); before a letter it could start a class such as \d.
    return "".join("\\" + ch if ch in string.punctuation else ch for ch in text)


def _like_regex(pattern: str) -> str:
    # a stored string starting with "$$" carries one escape "$" (see _encode): let a pattern that
    # starts with a literal "$" skip it
    parts = ["^\\$?" if pattern.startswith("$") else "^"]
    for ch in pattern:
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(_escape_regex(ch))
    # \z, not $: without the m flag PCRE's $ also matches before a final newline
    parts.append("\\z")
    return "".join(parts)


def _scalar(value: Any, condition: Condition) -> Any:
    if isinstance(value, list | tuple | dict):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a single "
            f"value, got {value!r}"
        )
    return _encode(value)


def _values(value: Any, condition: Condition) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a list "
            f"of values, got {value!r}"
        )
    return [_encode(item) for item in value]


def _string(value: Any, condition: Condition) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a "
            f"pattern string, got {value!r}"
        )
    return value


def _strings_only(field: str, regex: Document) -> Document:
    """``regex`` on ``field``, never matching an encoded datetime (stored as a string)."""
    return {"$and": [{field: regex}, {field: {"$not": {"$regex": "^\\$dt:"}}}]}


def _compile_condition(condition: Condition, relative: bool = False) -> Document:
    if ANY_ELEMENT in condition.path:
        return _compile_through_array(condition, relative)
    field = _field(condition.path, relative)
    op = condition.operator
    value = condition.value
    if op is Operator.EQUALS:
        return {field: _scalar(value, condition)}
    if op is Operator.NOT_EQUALS:
        return {field: {"$ne": _scalar(value, condition)}}
    if op is Operator.LESS_THAN:
        return {field: {"$lt": _scalar(value, condition)}}
    if op is Operator.LESS_EQUAL_THAN:
        return {field: {"$lte": _scalar(value, condition)}}
    if op is Operator.GREATER_THAN:
        return {field: {"$gt": _scalar(value, condition)}}
    if op is Operator.GREATER_EQUAL_THAN:
        return {field: {"$gte": _scalar(value, condition)}}
    if op is Operator.IN:
        return {field: {"$in": _values(value, condition)}}
    if op is Operator.NOT_IN:
        return {field: {"$nin": _values(value, condition)}}
    if op in (Operator.LIKE, Operator.ANY_LIKE):
        # on an array value the server matches when any element matches: that is ANY_LIKE
        regex = {"$regex": _like_regex(_string(value, condition)), "$options": "is"}
        return _strings_only(field, regex)
    if op is Operator.MATCH_REG_EX:
        pattern = _string(value, condition)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationError(
                f"MATCH_REG_EX pattern {pattern!r} on {'.'.join(condition.path)!r} is not a "
                f"valid regular expression: {exc}"
            ) from None
        return _strings_only(field, {"$regex": pattern})
    if op is Operator.ANY_EQ:
        # the server's equality on an array value matches when any element is equal
        return {field: _scalar(value, condition)}
    if op is Operator.BETWEEN:
        bounds = _values(value, condition)
        if len(bounds) != 2:
            raise ValidationError(
                f"BETWEEN on {'.'.join(condition.path)!r} expects [low, high], got {value!r}"
            )
        return {field: {"$gte": bounds[0], "$lte": bounds[1]}}
    if op is Operator.IS_NULL:
        return {field: None}
    if op is Operator.IS_NOT_NULL:
        return {field: {"$ne": None}}
    raise ValidationError(f"unknown filter operator {op!r}")


def _compile_through_array(condition: Condition, relative: bool) -> Document:
    """Some element of the array satisfies the rest of the path; none does, for the negations.

    A dotted path through an array already means "any element" to the server (and ``$ne`` /
    ``$nin`` mean "no element"), which FerretDB v1 supports; only BETWEEN needs ``$elemMatch`` so
    that both bounds hold for the same element."""
    if condition.operator in (Operator.IS_NULL, Operator.IS_NOT_NULL):
        raise ValidationError(
            f"{'.'.join(condition.path)}: {condition.operator} does not take a path through an "
            "array; test the array itself"
        )
    cut = condition.path.index(ANY_ELEMENT)
    if condition.operator is Operator.BETWEEN:
        inner = _compile_condition(
            Condition(condition.path[cut + 1 :], condition.operator, condition.value),
            relative=True,
        )
        return {_field(condition.path[:cut], relative): {"$elemMatch": inner}}
    dotted = tuple(part for part in condition.path if part != ANY_ELEMENT)
    negated = {Operator.NOT_EQUALS: Operator.EQUALS, Operator.NOT_IN: Operator.IN}
    if condition.operator in negated:
        # "no element matches", spelled $nor so FerretDB v1 (whose $nin over arrays is not
        # element-wise) gives the same answer as MongoDB
        positive = Condition(dotted, negated[condition.operator], condition.value)
        return {"$nor": [_compile_condition(positive, relative)]}
    return _compile_condition(Condition(dotted, condition.operator, condition.value), relative)


def _compile_text_search(search: TextSearch) -> Document:
    if not search.paths:
        return {"_id": {"$in": []}}
    regex = {"$regex": _escape_regex(search.term), "$options": "i"}
    clauses = [_strings_only(_field(path), dict(regex)) for path in search.paths]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _and(clauses: Sequence[Document]) -> Document:
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": list(clauses)}


def _keyset_predicate(sort: Sequence[SortKey], values: Sequence[Any]) -> Document:
    """Rows strictly after ``values`` in ``sort`` order, with null/missing first ascending and
    last descending (what MongoDB and FerretDB both do)."""
    disjuncts: list[Document] = []
    equal_prefix: list[Document] = []
    for key, raw in zip(sort, values, strict=True):
        field = _field(key.path)
        value = _encode(raw)
        after: Document | None
        if key.descending:
            after = None if value is None else {"$or": [{field: {"$lt": value}}, {field: None}]}
        else:
            after = {field: {"$ne": None}} if value is None else {field: {"$gt": value}}
        if after is not None:
            disjuncts.append(_and([*equal_prefix, after]))
        equal_prefix.append({field: value})
    if not disjuncts:
        return {"_id": {"$in": []}}
    return disjuncts[0] if len(disjuncts) == 1 else {"$or": disjuncts}


def _value_at(document: Document, field: str) -> Any:
    current: Any = document
    for part in field.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current
