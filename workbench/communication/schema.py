"""The property vocabulary every node shares: enum schemas and values (PascalCase and
CONSTANT_CASE), the common keys of each node's JSON Schema, the key holding child nodes.

A leaf module: node classes, the registry and the definition parser all import it, and it imports
none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CHILDREN_KEY",
    "COMMON_PROPERTIES",
    "constant_case",
    "enum_schema",
    "enum_value",
]


def constant_case(name: str) -> str:
    """``DoubleRandom`` → ``DOUBLE_RANDOM``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def enum_schema(values: Iterable[str], description: str = "") -> dict[str, Any]:
    """A string enum accepting each value as written and in CONSTANT_CASE."""
    names = list(values)
    accepted = names + [constant_case(v) for v in names if constant_case(v) != v]
    schema: dict[str, Any] = {"type": "string", "enum": accepted}
    if description:
        schema["description"] = description
    return schema


def enum_value(raw: Any, values: Iterable[str]) -> str:
    """The PascalCase value of ``raw`` (``UPDATE`` → ``Update``); raw when unknown."""
    text = str(raw)
    for value in values:
        if text == value or text == constant_case(value) or text.lower() == value.lower():
            return value
    return text


_PATH = {"type": "string", "description": "a JSONPath ($.a.b); a bare name x means $.x"}

#: keys every node accepts
COMMON_PROPERTIES: dict[str, Any] = {
    "type": {"type": "string", "description": "the node type, Name@Version"},
    "description": {"type": "string", "description": "free text"},
    "path": {**_PATH, "description": "input path (default $)"},
    "targetPath": {**_PATH, "description": "output path (default $)"},
    "targetValueWriteMode": enum_schema(["Overwrite", "Append", "Prepend", "Merge"]),
    "targetValueKind": enum_schema(["Simple", "Array"]),
    "documentMode": enum_schema(["Extend", "Replace"]),
}

#: keys of a control node holding its children
CHILDREN_KEY = "transformations"
