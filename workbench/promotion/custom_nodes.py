"""Custom nodes of an adapter notebook: Python classes with a JSON Schema for their properties.

A node cell of the notebook defines a class decorated with
:func:`workbench.communication.registry.register_node` (the registry's public hook)::

    from workbench.communication import Node
    from workbench.communication.registry import register_node

    @register_node
    class ScaleValue(Node):
        \"\"\"Multiply the number at path by factor.\"\"\"
        type_name = "ScaleValue@1"
        properties = {"factor": {"type": "number", "description": "the multiplier"}}
        required = ("factor",)

        async def run(self, context, env):
            self.write(context, context.get(self.path) * self.prop("factor"))

Run in the notebook, the cell makes the node usable in its ``%%pipeline`` cells at once. At
promotion the node cells (each must import what it uses) become the adapter's plug-in file
(:func:`plugin_source`), loaded by its process through ``$WORKBENCH_NODE_PLUGINS``. Their
schemas are read in a separate Python process (:func:`describe_custom_nodes`: nothing of the
notebook runs in the promoting process) and kept in the artifact, so the pipelines are checked
against them at promotion and by the Communication Controller (:func:`tenant_node_registry`)
without loading the notebook's code there.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ErrorDetail, ValidationError
from workbench.promotion.notebooks import Notebook, code_cells, python_source

if TYPE_CHECKING:
    from workbench.communication.node import Node
    from workbench.communication.registry import NodeRegistry

__all__ = [
    "check_pipelines",
    "custom_node_cells",
    "describe_custom_nodes",
    "node_process_command",
    "node_process_environment",
    "plugin_source",
    "registry_with",
    "tenant_node_registry",
    "validate_definition",
]

DECORATOR = "register_node"

#: runs before the module of a process that loads node code: jsonschema's format module imports
#: ``rfc3987_syntax`` when installed, which builds an Earley grammar at import (1-3 s of every
#: start) for the "iri" formats only, and formats are not asserted in node schemas anyway
_PRELUDE = "import sys, runpy; sys.modules['rfc3987_syntax'] = None; "

#: environment variables a process running notebook code never inherits (and the plug-in
#: list of the promoting process: it gets its own)
_WITHHELD = ("TOKEN", "SECRET", "PASSWORD", "CLIENT_ID")


def node_process_command(module: str, *arguments: str) -> list[str]:
    """``python -m module arguments...`` for a process that loads a notebook's nodes, with the
    costly optional grammar of jsonschema's format module left out."""
    launcher = f"{_PRELUDE}runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return [sys.executable, "-c", launcher, *arguments]


def node_process_environment() -> dict[str, str]:
    """This process's environment without the workbench credentials (tokens, client secrets,
    passwords) and without ``WORKBENCH_NODE_PLUGINS``: what a process that runs notebook code
    starts from (it is given the credentials of its own, if any)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not (
            key == "WORKBENCH_NODE_PLUGINS"
            or (key.startswith("WORKBENCH_") and any(w in key for w in _WITHHELD))
        )
    }


def _decorated(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == DECORATOR:
            return True
        if isinstance(target, ast.Attribute) and target.attr == DECORATOR:
            return True
    return False


def custom_node_cells(notebook: Notebook) -> list[tuple[int, str]]:
    """``(index, Python source)`` of the cells defining ``@register_node`` classes."""
    found = []
    for index, source, _tags in code_cells(notebook):
        text = python_source(source)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue  # reported by the kinds that parse every cell
        if any(isinstance(n, ast.ClassDef) and _decorated(n) for n in ast.walk(tree)):
            found.append((index, text))
    return found


def plugin_source(notebook: Notebook) -> str:
    """The adapter's plug-in file: the node cells in notebook order (empty: no custom nodes)."""
    parts = [f"# --- cell {index} of the promoted notebook\n{text}\n" for index, text in
             custom_node_cells(notebook)]  # fmt: skip
    return "".join(parts)


def describe_custom_nodes(notebook: Notebook, *, timeout: float = 120.0) -> dict[str, Any]:
    """``{Name@Version: {kind, properties, required, hasChildren, description}}`` of the
    notebook's custom nodes, read by loading the node cells in a Python process of their own."""
    source = plugin_source(notebook)
    if not source:
        return {}
    with tempfile.TemporaryDirectory(prefix="wb-nodes-") as folder:
        path = Path(folder) / "nodes.py"
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                node_process_command("workbench.promotion.custom_nodes", str(path)),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=node_process_environment(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ValidationError(
                f"the notebook's node cells did not load within {timeout:g} s; a node cell "
                "defines classes and imports only (no long-running code at the top level)"
            ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        cells = ", ".join(str(i) for i, _ in custom_node_cells(notebook))
        raise ValidationError(
            f"the notebook's node cells (cells {cells}) do not load: {last}; each node cell "
            "must run on its own (import what it uses in the cell itself)"
        )
    described: dict[str, Any] = json.loads(done.stdout)
    return described


def stand_in(type_name: str, description: Mapping[str, Any]) -> type[Node]:
    """A node class carrying only the schema of ``type_name`` (validation, never running)."""
    from workbench.communication.node import Node, TriggerNode

    base: type[Node] = TriggerNode if description.get("kind") == "trigger" else Node
    attributes = {
        "__doc__": str(description.get("description") or f"custom node {type_name}"),
        "type_name": type_name,
        "kind": "trigger" if base is TriggerNode else "transformation",
        "properties": dict(description.get("properties") or {}),
        "required": tuple(description.get("required") or ()),
        "has_children": bool(description.get("hasChildren")),
    }
    return type(type_name.replace("@", "V"), (base,), attributes)


def registry_with(
    custom: Mapping[str, Mapping[str, Any]], base: NodeRegistry | None = None
) -> NodeRegistry:
    """``base`` (default: the built-in nodes) plus stand-ins of the ``custom`` nodes."""
    from workbench.communication.registry import default_registry

    registry = (base or default_registry()).copy()
    for type_name, description in custom.items():
        registry.add_custom(stand_in(type_name, description))
    return registry


_PROPERTY = re.compile(r"property '([^']+)'")


def _fix(schema: Mapping[str, Any]) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    elif "type" in schema:
        kind = schema["type"]
        parts.append(" or ".join(kind) if isinstance(kind, list) else str(kind))
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minLength", "length >=")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if schema.get("pattern"):
        parts.append(f"matching {schema['pattern']}")
    hint = ", ".join(parts) or "what its JSON Schema allows"
    description = schema.get("description")
    return f"fix: give it {hint}" + (f" ({description})" if description else "")


def check_pipelines(
    pipelines: Mapping[str, str], custom: Mapping[str, Mapping[str, Any]]
) -> list[ErrorDetail]:
    """Every problem of the pipelines against the built-in nodes plus ``custom``; a bad
    property of a custom node names the node, the property, the value and the fix."""
    from workbench.communication import validate_pipeline

    registry = registry_with(custom)
    problems: list[ErrorDetail] = []
    for name, text in pipelines.items():
        for problem in validate_pipeline(text, name=name, registry=registry):
            problems.append(_explained(problem, custom))
    return problems


def _explained(problem: ErrorDetail, custom: Mapping[str, Mapping[str, Any]]) -> ErrorDetail:
    element = problem.element or ""
    node = next((t for t in custom if element.endswith(f"({t})")), None)
    match = _PROPERTY.search(problem.message)
    if node is None or match is None or "fix:" in problem.message:
        return problem
    schema = (custom[node].get("properties") or {}).get(match.group(1))
    if not isinstance(schema, Mapping):
        return problem
    return ErrorDetail(f"{problem.message}; {_fix(schema)}", problem.location, problem.element)


def tenant_node_registry(tenant: Any) -> tuple[NodeRegistry, dict[str, Any]]:
    """The built-in nodes plus the custom nodes of the tenant's deployed adapter promotions
    (from their artifacts: no notebook code runs), and those custom nodes' descriptions."""
    from workbench.promotion.artifacts import ArtifactStore

    custom: dict[str, Any] = {}
    files_dir = getattr(tenant, "files_dir", None)
    if files_dir is None:  # a remote tenant: no artifacts here
        return registry_with(custom), custom
    store = ArtifactStore(Path(files_dir), tenant.id)
    for deployment in store.deployments("adapter"):
        artifact = store.get(deployment.name, deployment.version)
        custom.update(artifact.details.get("customNodes") or {})
    return registry_with(custom), custom


def validate_definition(tenant: Any, definition: str, *, name: str) -> list[ErrorDetail]:
    """The controller's check of a definition: built-in and the tenant's promoted nodes."""
    _registry, custom = tenant_node_registry(tenant)
    return check_pipelines({name: definition}, custom)


def _describe_file(path: Path) -> dict[str, Any]:
    from workbench.communication.registry import default_registry, load_node_plugin

    registry = default_registry()
    described = {}
    for type_name in load_node_plugin(path):
        node = registry.get(type_name)
        described[type_name] = {
            "kind": node.kind,
            "properties": node.properties,
            "required": list(node.required),
            "hasChildren": node.has_children,
            "description": (node.__doc__ or "").strip().split("\n\n")[0],
        }
    return described


if __name__ == "__main__":  # python -m workbench.promotion.custom_nodes FILE
    try:
        print(json.dumps(_describe_file(Path(sys.argv[1])), default=str))
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
