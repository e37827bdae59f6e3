"""The node registry: every node type (``Name@Version``) with the JSON Schema of its properties.

A node class declares ``type_name`` (``Simulation@1``), ``kind`` (trigger or transformation) and
``properties`` (JSON Schema of its own keys; the common keys of :data:`COMMON_PROPERTIES` are
added). :func:`node_schema` gives the full schema an adapter publishes; an unknown key is an error
(``additionalProperties: false``). Enum properties accept PascalCase and CONSTANT_CASE.

Custom nodes (a notebook's, a plug-in file's) join a registry through the public hook
:meth:`NodeRegistry.add_custom` — :func:`register_node` (a class decorator) for the default
registry of the process, the ``node_plugins`` setting (``$WORKBENCH_NODE_PLUGINS``) for files
loaded when it is first built.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from workbench.communication.schema import (
    CHILDREN_KEY,
    COMMON_PROPERTIES,
    constant_case,
    enum_schema,
    enum_value,
)
from workbench.errors import NotFound, ValidationError, WorkbenchError
from workbench.settings import current_settings

if TYPE_CHECKING:
    from workbench.communication.node import Node

N = TypeVar("N", bound="Node")
_NODE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*@[1-9][0-9]*$")

__all__ = [
    "CHILDREN_KEY",
    "COMMON_PROPERTIES",
    "PLUGINS_ENV",
    "NodeRegistry",
    "NodeSchema",
    "PropertySchema",
    "constant_case",
    "default_registry",
    "enum_schema",
    "enum_value",
    "load_node_plugin",
    "node_schema",
    "register_node",
]


#: the JSON Schema of one property (JSON values by schema keyword: type, enum, items, ...)
PropertySchema = dict[str, Any]

#: the JSON Schema of a node's configuration, as :func:`node_schema` builds it
NodeSchema = TypedDict(
    "NodeSchema",
    {
        "$schema": str,
        "title": str,
        "description": str,
        "type": str,
        "properties": dict[str, PropertySchema],
        "required": list[str],
        "additionalProperties": bool,
    },
)


def node_schema(node: type[Node]) -> NodeSchema:
    """The JSON Schema of one node's properties (common keys included)."""
    properties: dict[str, PropertySchema] = {**COMMON_PROPERTIES, **node.properties}
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
        self._custom: set[str] = set()

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

    def schemas(self) -> dict[str, NodeSchema]:
        """``{Name@Version: JSON Schema}`` of every node (what an adapter publishes)."""
        return {name: node_schema(self._nodes[name]) for name in self.names()}

    def copy(self) -> NodeRegistry:
        """A registry with the same nodes (to add nodes to without changing this one)."""
        other = NodeRegistry()
        other._nodes = dict(self._nodes)
        other._custom = set(self._custom)
        return other

    def add_custom(self, node: type[Node]) -> type[Node]:
        """Add a node defined outside :mod:`workbench.communication.nodes` (a notebook's, a
        plug-in file's) after checking it: ``type_name`` is ``Name@Version`` and not a built-in
        node's, ``kind`` is trigger or transformation, ``properties`` map names to JSON Schemas.
        Adding the same name again replaces the earlier custom node (a re-run notebook cell)."""
        from workbench.communication.node import Node

        label = getattr(node, "__name__", repr(node))
        if not (isinstance(node, type) and issubclass(node, Node)):
            raise ValidationError(
                f"{label} is not a node class: subclass workbench.communication.Node "
                "(or TriggerNode) and set type_name and properties"
            )
        if not _NODE_NAME.fullmatch(node.type_name or ""):
            raise ValidationError(
                f"node class {label} has type_name {node.type_name!r}; give it Name@Version, "
                "e.g. type_name = 'ScaleValue@1'"
            )
        if node.kind not in ("trigger", "transformation"):
            raise ValidationError(
                f"node {node.type_name} has kind {node.kind!r}; use 'transformation' (subclass "
                "Node) or 'trigger' (subclass TriggerNode)"
            )
        if node.type_name in self._nodes and node.type_name not in self._custom:
            raise ValidationError(
                f"node {node.type_name} is built in; give {label} another name or version "
                f"(e.g. {node.type_name.split('@')[0]}Custom@1)"
            )
        _check_properties_schema(node)
        self._nodes[node.type_name] = node
        self._custom.add(node.type_name)
        return node

    def custom_names(self) -> list[str]:
        """The nodes added with :meth:`add_custom`."""
        return sorted(self._custom & set(self._nodes))


def _check_properties_schema(node: type[Node]) -> None:
    import jsonschema  # type: ignore[import-untyped]

    properties = node.properties
    if not isinstance(properties, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in properties.items()
    ):
        raise ValidationError(
            f"node {node.type_name}: properties must map property names to JSON Schemas, e.g. "
            "{'factor': {'type': 'number', 'description': 'multiplier'}}"
        )
    missing = [r for r in node.required if r not in properties]
    if missing:
        raise ValidationError(
            f"node {node.type_name}: required names {', '.join(missing)}, which properties does "
            "not define; add them to properties or drop them from required"
        )
    try:
        jsonschema.Draft202012Validator.check_schema(node_schema(node))
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValidationError(
            f"node {node.type_name}: the JSON Schema of its properties is invalid at {where}: "
            f"{exc.message}"
        ) from None


#: environment variable: Python files (``os.pathsep``-separated) whose custom nodes
#: :func:`default_registry` loads (a promoted adapter's process gets its notebook's nodes so)
PLUGINS_ENV = "WORKBENCH_NODE_PLUGINS"

#: the process's default registry once built (a holder: built lazily, once)
_default: dict[str, NodeRegistry] = {}
_default_lock = threading.Lock()


def default_registry() -> NodeRegistry:
    """The registry holding every node of :mod:`workbench.communication.nodes`, then the
    custom nodes of the plug-in files the ``node_plugins`` setting names
    (``$WORKBENCH_NODE_PLUGINS``, separated by ``os.pathsep``)."""
    if "registry" in _default:
        return _default["registry"]
    with _default_lock:
        if "registry" not in _default:
            from workbench.communication.nodes import all_nodes

            registry = NodeRegistry()
            for node in all_nodes():
                registry.register(node)
            # set before the plug-ins run: their register_node calls come back here
            _default["registry"] = registry
            for path in filter(None, current_settings().node_plugins.split(os.pathsep)):
                load_node_plugin(Path(path))
    return _default["registry"]


def register_node(node: type[N]) -> type[N]:
    """Make ``node`` usable in pipelines of this process (a class decorator for custom nodes in
    notebooks and plug-in files): added to :func:`default_registry` with
    :meth:`NodeRegistry.add_custom`. A promoted adapter notebook's nodes are found by this
    decorator and run in the adapter's process."""
    default_registry().add_custom(node)
    return node


def load_node_plugin(path: Path) -> list[str]:
    """Run the Python file ``path`` (its ``@register_node`` classes join the default registry);
    returns the node names it added."""
    import runpy

    registry = default_registry()
    before = {n: registry.get(n) for n in registry.custom_names()}
    try:
        runpy.run_path(str(path), run_name=f"workbench_node_plugin_{abs(hash(path))}")
    except WorkbenchError:
        raise
    except Exception as exc:
        raise ValidationError(
            f"the node plug-in {path} failed to load: {type(exc).__name__}: {exc}; fix the "
            "nodes' code (each node cell must import what it uses)"
        ) from exc
    return [n for n in registry.custom_names() if before.get(n) is not registry.get(n)]
