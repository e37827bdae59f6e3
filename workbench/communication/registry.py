"""The node registry: every node type (``Name@Version``) with the JSON Schema of its properties.

A node class declares ``type_name`` (``Simulation@1``), ``kind`` (trigger or transformation) and
``properties`` (JSON Schema of its own keys; the common keys of :data:`COMMON_PROPERTIES` are
added). :func:`node_schema` gives the full schema an adapter publishes; an unknown key is an error
(``additionalProperties: false``). Enum properties accept PascalCase and CONSTANT_CASE.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from workbench.communication.schema import (
    CHILDREN_KEY,
    COMMON_PROPERTIES,
    constant_case,
    enum_schema,
    enum_value,
)
from workbench.errors import NotFound

if TYPE_CHECKING:
    from workbench.communication.node import Node

__all__ = [
    "CHILDREN_KEY",
    "COMMON_PROPERTIES",
    "NodeRegistry",
    "constant_case",
    "default_registry",
    "enum_schema",
    "enum_value",
    "node_schema",
]


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
    from workbench.communication.nodes import all_nodes

    registry = NodeRegistry()
    for node in all_nodes():
        registry.register(node)
    return registry
