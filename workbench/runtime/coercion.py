"""Filter comparison values: list arguments and their conversion to the storage form."""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.ck.model import CkModel, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.errors import ErrorDetail, ValidationError
from workbench.query.model import Operator
from workbench.runtime.operators import (
    _LIST_OPS,
    _NULL_OPS,
    _OPERATORS,
    _PATTERN_OPS,
    applicable_operators,
)
from workbench.runtime.scalars import _Invalid, _show, _to_int, _to_scalar, _to_string

__all__ = ["coerce_value", "split_list_value"]


def split_list_value(raw: Any) -> list[Any]:
    """The items of a list-valued filter argument: a list as is; a string holding a JSON list
    (``'[230, 240]'``) or comma-separated items (``"a, 'b,c', d"``: quotes keep commas, are
    removed, and keep surrounding spaces); any other single value as a one-item list."""
    if isinstance(raw, list | tuple):
        return list(raw)
    if not isinstance(raw, str):
        return [raw]
    text = raw.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{raw!r} is not a valid JSON list: {exc.msg}") from None
        if not isinstance(parsed, list):
            raise ValueError(f"{raw!r} is not a JSON list")
        return parsed
    if not text:
        return []
    items: list[str] = []
    current: list[str] = []
    quote: str | None = None
    quoted = False
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "'\"" and not "".join(current).strip():
            quote, quoted, current = char, True, []
        elif char == ",":
            items.append("".join(current) if quoted else "".join(current).strip())
            current, quoted = [], False
        elif not (quoted and char.isspace()):
            current.append(char)
    if quote is not None:
        raise ValueError(f"{raw!r} has an unclosed quote")
    items.append("".join(current) if quoted else "".join(current).strip())
    return items


def coerce_value(
    model: CkModel,
    type_attribute: TypeAttribute,
    raw: Any,
    operator: Operator,
    *,
    path: str | None = None,
    owner: str | None = None,
) -> Any:
    """The storage form of a filter comparison value for ``type_attribute`` under ``operator``.

    Strings (from the CLI) are converted: numbers, ``true``/``false``, ISO date-times with a
    zone, TimeSpans, enum names or keys (flags: ``'A|B'``). ``IN``/``NOT_IN``/``BETWEEN`` take a
    list, a JSON list string or comma-separated items (``BETWEEN``: exactly two); ``LIKE``,
    ``MATCH_REG_EX`` and ``ANY_LIKE`` keep the pattern string; ``ANY_EQ`` converts to the array's
    element type; ``IS_NULL``/``IS_NOT_NULL`` give ``None``. Raises :class:`ValidationError`
    naming ``path`` (default: the attribute's field name) and ``owner`` (default: the type that
    declares the attribute).
    """
    label = path or graphql_field_name(type_attribute.name)
    where = owner or type_attribute.declared_on
    try:
        return _coerce(model, type_attribute, raw, operator)
    except _Invalid as exc:
        message = f"attribute '{label}' of {where} {exc.reason}"
        raise ValidationError(
            f"invalid filter value for '{label}'", [ErrorDetail(message, None, label)]
        ) from None


def _coerce(model: CkModel, attribute: TypeAttribute, raw: Any, operator: Operator) -> Any:
    value_type = attribute.value_type
    if operator not in _OPERATORS[value_type]:
        fitting = ", ".join(applicable_operators(value_type))
        raise _Invalid(
            f"is a {value_type} and cannot be filtered with {operator}; operators that fit: "
            f"{fitting}"
        )
    if operator in _NULL_OPS:
        return None
    if operator in _LIST_OPS:
        try:
            items = split_list_value(raw)
        except ValueError as exc:
            raise _Invalid(f"expects a list of values for {operator}: {exc}") from None
        if operator is Operator.BETWEEN and len(items) != 2:
            raise _Invalid(
                f"expects two values for BETWEEN (low and high, e.g. '10,20'), got {_show(raw)}"
            )
        if not items:
            raise _Invalid(f"expects at least one value for {operator}, got {_show(raw)}")
        return [_to_scalar(model, attribute, item, lenient=True) for item in items]
    if operator in _PATTERN_OPS or operator is Operator.ANY_LIKE:
        if not isinstance(raw, str):
            raise _Invalid(f"expects a text pattern for {operator}, got {_show(raw)}")
        if operator is Operator.MATCH_REG_EX:
            try:
                re.compile(raw)
            except re.error as exc:
                raise _Invalid(f"expects a valid regular expression, got {raw!r} ({exc})") from None
        return raw
    if operator is Operator.ANY_EQ:
        if value_type is ValueType.INT_ARRAY:
            return _to_int(raw, ValueType.INT, lenient=True)
        return _to_string(raw, lenient=True)
    if raw is None:
        raise _Invalid(f"needs a comparison value for {operator} (use IS_NULL to test for null)")
    return _to_scalar(model, attribute, raw, lenient=True)
