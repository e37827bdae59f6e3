"""Comparison operators of ``If@1`` and ``Switch@1`` (names as in definitions, any case)."""

from __future__ import annotations

from typing import Any

from workbench.communication.schema import enum_schema, enum_value

__all__ = ["OPERATORS", "compare", "operator_schema"]

OPERATORS = [
    "Equals",
    "NotEquals",
    "GreaterThan",
    "GreaterThanOrEqual",
    "LessThan",
    "LessThanOrEqual",
    "Contains",
    "StartsWith",
    "EndsWith",
    "Exists",
    "NotExists",
    "IsNull",
    "IsNotNull",
    "IsTrue",
    "IsFalse",
]


def operator_schema() -> dict[str, Any]:
    return enum_schema(OPERATORS, "comparison operator")


def compare(operator: str, value: Any, expected: Any, exists: bool = True) -> bool:
    """Whether ``value`` (found at the path when ``exists``) satisfies ``operator expected``."""
    op = enum_value(operator, OPERATORS)
    if op == "Exists":
        return exists
    if op == "NotExists":
        return not exists
    if op == "IsNull":
        return value is None
    if op == "IsNotNull":
        return value is not None
    if op == "IsTrue":
        return value is True
    if op == "IsFalse":
        return value is False
    if op == "Equals":
        return bool(value == expected)
    if op == "NotEquals":
        return bool(value != expected)
    if op == "Contains":
        return value is not None and expected in value
    if op == "StartsWith":
        return isinstance(value, str) and value.startswith(str(expected))
    if op == "EndsWith":
        return isinstance(value, str) and value.endswith(str(expected))
    if value is None or expected is None:
        return False
    if op == "GreaterThan":
        return bool(value > expected)
    if op == "GreaterThanOrEqual":
        return bool(value >= expected)
    if op == "LessThan":
        return bool(value < expected)
    if op == "LessThanOrEqual":
        return bool(value <= expected)
    raise ValueError(f"unknown operator {operator!r}; use one of: {', '.join(OPERATORS)}")
