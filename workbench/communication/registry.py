"""The node registry: every node type (``Name@Version``) with the JSON Schema of its properties.

A node class declares ``type_name`` (``Simulation@1``), ``kind`` (trigger or transformation) and
``properties`` (JSON Schema of its own keys; the common keys of :data:`COMMON_PROPERTIES` are
added). :func:`node_schema` gives the full schema an adapter publishes; an unknown key is an error
(``additionalProperties: false``). Enum properties accept PascalCase and CONSTANT_CASE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from workbench.errors import NotFound

if TYPE_CHECKING:
    from workbench.communication.node import Node

__all__ = [
    "COMMON_PROPERTIES",
    "NodeRegistry",
    "constant_case",
    "default_registry",
    "enum_schema",
    "enum_value",
    "node_schema",
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


def node_schema(node: type[Node]) -> dict[str, Any]:
    """The JSON Schema of one node's properties (common keys included)."""
    properties = {**COMMON_PROPERTIES, **node.properties}
    if node.has_children:
        properties[CHILDREN_KEY] = {
            "type": "array",
            "items": {"type": "object"},
            "description": "child nodes run by this node",
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": node.type_name,
        "description": (node.__doc__ or "").strip().split("\n\n")[0],
        "type": "object",
        "properties": properties,
        "required": ["type", *node.required],
        "additionalProperties": False,
    }


class NodeRegistry:
    """Node classes by ``Name@Version``."""

    def __init__(self) -> None:
        self._nodes: dict[str, type[Node]] = {}

    def register(self, node: type[Node]) -> type[Node]:
        """Add ``node`` (usable as a class decorator)."""
        self._nodes[node.type_name] = node
        return node

    def get(self, type_name: str) -> type[Node]:
        node = self._nodes.get(type_name)
        if node is None:
            raise NotFound(
                f"node {type_name} is not supported by this adapter; supported: "
                + ", ".join(self.names())
            )
        return node

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._nodes

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, c in self._nodes.items() if kind is None or c.kind == kind)

    def schemas(self) -> dict[str, dict[str, Any]]:
        """``{Name@Version: JSON Schema}`` of every node (what an adapter publishes)."""
        return {name: node_schema(self._nodes[name]) for name in self.names()}


@cache
def default_registry() -> NodeRegistry:
    """The registry holding every node of :mod:`workbench.communication.nodes`."""
    from workbench.communication.nodes import register_all

    registry = NodeRegistry()
    register_all(registry)
    return registry
