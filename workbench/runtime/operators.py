"""The filter operators that apply to each value type of an attribute."""

from __future__ import annotations

from workbench.ck.model import ValueType
from workbench.query.model import Operator

__all__ = ["applicable_operators"]


_NULL_OPS = frozenset({Operator.IS_NULL, Operator.IS_NOT_NULL})
_EQUALITY_OPS = _NULL_OPS | {Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN, Operator.NOT_IN}
_ORDER_OPS = _EQUALITY_OPS | {
    Operator.LESS_THAN,
    Operator.LESS_EQUAL_THAN,
    Operator.GREATER_THAN,
    Operator.GREATER_EQUAL_THAN,
    Operator.BETWEEN,
}
_PATTERN_OPS = frozenset({Operator.LIKE, Operator.MATCH_REG_EX})
_LIST_OPS = frozenset({Operator.IN, Operator.NOT_IN, Operator.BETWEEN})

_OPERATORS: dict[ValueType, frozenset[Operator]] = {
    ValueType.STRING: _ORDER_OPS | _PATTERN_OPS,
    ValueType.BINARY_LINKED: _EQUALITY_OPS | _PATTERN_OPS,
    ValueType.BOOLEAN: _EQUALITY_OPS,
    ValueType.INT: _ORDER_OPS,
    ValueType.INT64: _ORDER_OPS,
    ValueType.DOUBLE: _ORDER_OPS,
    ValueType.DATETIME: _ORDER_OPS,
    ValueType.DATETIME_OFFSET: _ORDER_OPS,
    ValueType.TIMESPAN: _ORDER_OPS,
    ValueType.ENUM: _EQUALITY_OPS,
    ValueType.STRING_ARRAY: _NULL_OPS | {Operator.ANY_EQ, Operator.ANY_LIKE},
    ValueType.INT_ARRAY: _NULL_OPS | {Operator.ANY_EQ},
    ValueType.RECORD: _NULL_OPS,
    ValueType.RECORD_ARRAY: _NULL_OPS,
    ValueType.GEOSPATIAL_POINT: _NULL_OPS,
    ValueType.BINARY: _NULL_OPS,
}


def applicable_operators(value_type: ValueType) -> list[Operator]:
    """The filter operators that apply to attributes of ``value_type``, in declaration order.

    Ordered comparisons and ``BETWEEN`` fit numbers, dates, TimeSpans and strings; ``LIKE`` and
    ``MATCH_REG_EX`` fit strings; ``ANY_EQ``/``ANY_LIKE`` fit arrays; records, points and binary
    values can only be tested with ``IS_NULL``/``IS_NOT_NULL``.
    """
    allowed = _OPERATORS[value_type]
    return [op for op in Operator if op in allowed]
