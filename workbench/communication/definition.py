"""Pipeline definitions: the YAML format, parsed and checked before anything runs.

A definition has exactly two root keys, ``triggers`` and ``transformations``, each a list of
nodes; every node has ``type: Name@Version`` and camelCase properties checked against the node's
JSON Schema (:mod:`workbench.communication.registry`). Control nodes nest children under their
own ``transformations``. Every problem is collected: the error names the pipeline, the node's
position and type, the property, the line, and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from workbench.communication.errors import PipelineDefinitionError, node_label
from workbench.communication.node import NodeConfig
from workbench.communication.registry import NodeRegistry, default_registry
from workbench.communication.schema import CHILDREN_KEY
from workbench.errors import ErrorDetail

if TYPE_CHECKING:
    import jsonschema  # type: ignore[import-untyped]

__all__ = ["NodeConfig", "PipelineDefinition", "parse_pipeline", "validate_pipeline"]

ROOT_KEYS = ("triggers", "transformations")
_NODE_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]*@[1-9][0-9]*$")


@dataclass
class PipelineDefinition:
    """A checked definition: trigger and transformation node configurations."""

    name: str
    triggers: list[NodeConfig]
    transformations: list[NodeConfig]
    text: str = ""

    def trigger_types(self) -> list[str]:
        return [t.type for t in self.triggers]


class _Lines:
    """Line numbers of the YAML nodes, by path of keys and indices."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def at(self, path: tuple[Any, ...]) -> str | None:
        while path:
            if path in self.lines:
                return f"line {self.lines[path]}"
            path = path[:-1]
        return None


def parse_pipeline(
    text: str | Mapping[str, Any],
    *,
    name: str = "<pipeline>",
    registry: NodeRegistry | None = None,
) -> PipelineDefinition:
    """Parse and validate a definition (YAML text or an already parsed mapping).

    Raises :class:`PipelineDefinitionError` with every problem found."""
    registry = registry or default_registry()
    source = text if isinstance(text, str) else yaml.safe_dump(dict(text), sort_keys=False)
    lines = _Lines(source)
    problems: list[ErrorDetail] = []
    if isinstance(text, str):
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).replace("\n", " ")
            raise PipelineDefinitionError(
                f"pipeline {name!r} is not valid YAML: {problem}",
                [ErrorDetail(f"not valid YAML: {problem}", None, name)],
            ) from exc
    else:
        document = dict(text)
    if not isinstance(document, dict):
        raise PipelineDefinitionError(
            f"pipeline {name!r} must be a mapping with the keys triggers and transformations, "
            f"not {type(document).__name__}"
        )
    for key in document:
        if key not in ROOT_KEYS:
            problems.append(
                ErrorDetail(
                    f"unknown root key {key!r}: a pipeline has exactly the two root keys "
                    "'triggers' and 'transformations'",
                    lines.at((key,)),
                    name,
                )
            )
    for key in ROOT_KEYS:
        if key not in document:
            problems.append(
                ErrorDetail(
                    f"the root key {key!r} is missing (give a list, maybe empty)", None, name
                )
            )
    parsed: dict[str, list[NodeConfig]] = {}
    for key in ROOT_KEYS:
        items = document.get(key) or []
        parsed[key] = _nodes(items, (key,), name, key == "triggers", registry, lines, problems)
    if not problems and not parsed["triggers"]:
        problems.append(
            ErrorDetail(
                "no trigger: add one, e.g. '- type: FromExecutePipelineCommand@1' to run it on "
                "demand",
                lines.at(("triggers",)),
                name,
            )
        )
    if problems:
        summary = "; ".join(str(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise PipelineDefinitionError(f"pipeline {name!r} is invalid: {summary}{more}", problems)
    return PipelineDefinition(name, parsed["triggers"], parsed["transformations"], source)


def validate_pipeline(
    text: str | Mapping[str, Any], *, name: str = "<pipeline>", registry: NodeRegistry | None = None
) -> list[ErrorDetail]:
    """The problems of a definition (empty when it is valid)."""
    try:
        parse_pipeline(text, name=name, registry=registry)
    except PipelineDefinitionError as exc:
        return list(exc.details) or [ErrorDetail(str(exc))]
    return []


def _nodes(
    items: Any,
    path: tuple[Any, ...],
    pipeline: str,
    triggers: bool,
    registry: NodeRegistry,
    lines: _Lines,
    problems: list[ErrorDetail],
) -> list[NodeConfig]:
    where = ".".join(str(p) for p in path)
    if not isinstance(items, list):
        problems.append(
            ErrorDetail(
                f"{where} must be a list of nodes, not {type(items).__name__}",
                lines.at(path),
                pipeline,
            )
        )
        return []
    result: list[NodeConfig] = []
    for index, item in enumerate(items):
        item_path = (*path, index)
        position = _position(item_path)
        config = _node(item, item_path, position, pipeline, triggers, registry, lines, problems)
        if config is not None:
            result.append(config)
    return result


def _position(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _node(
    item: Any,
    path: tuple[Any, ...],
    position: str,
    pipeline: str,
    triggers: bool,
    registry: NodeRegistry,
    lines: _Lines,
    problems: list[ErrorDetail],
) -> NodeConfig | None:
    def problem(message: str, at: tuple[Any, ...] = path, node_type: str = "?") -> None:
        problems.append(
            ErrorDetail(message, lines.at(at), node_label(pipeline, position, node_type))
        )

    if not isinstance(item, dict):
        problem(f"a node must be a mapping with a 'type' key, not {type(item).__name__}")
        return None
    node_type = item.get("type")
    if not isinstance(node_type, str) or not _NODE_TYPE.match(node_type):
        problem(
            f"'type' is {node_type!r}; every node names its type as Name@Version "
            "(e.g. Simulation@1)",
            (*path, "type"),
        )
        return None
    if node_type not in registry:
        kind = "trigger" if triggers else "transformation"
        problem(
            f"node {node_type} is not supported by this adapter; supported {kind} nodes: "
            + ", ".join(registry.names(kind)),
            (*path, "type"),
            node_type,
        )
        return None
    cls = registry.get(node_type)
    if (cls.kind == "trigger") != triggers:
        expected = "triggers" if cls.kind == "trigger" else "transformations"
        problem(f"{node_type} is a {cls.kind} node: list it under {expected}:", path, node_type)
        return None
    # imported when a definition is checked: jsonschema's format module costs ~1 s at import
    # (rfc3987_syntax builds a grammar), which every service importing the GraphQL schema paid
    import jsonschema

    from workbench.communication.registry import node_schema

    validator = jsonschema.Draft202012Validator(node_schema(cls))
    for error in sorted(validator.iter_errors(item), key=lambda e: list(e.absolute_path)):
        at = (*path, *error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            at = (*at, extra[0]) if extra else at
        problem(_schema_message(error, cls.properties), at, node_type)
    groups: dict[str, list[NodeConfig]] = {}
    for label, suffix, items in cls.child_groups(item):
        groups[label] = _nodes(
            items or [], (*path, *suffix), pipeline, False, registry, lines, problems
        )
    properties = {k: v for k, v in item.items() if k not in ("type", CHILDREN_KEY)}
    line = lines.lines.get(path)
    return NodeConfig(node_type, properties, position, pipeline, line, groups)


def _schema_message(error: jsonschema.ValidationError, properties: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        target = f"{where}: " if where else ""
        return (
            f"{target}unknown property {', '.join(repr(e) for e in extra)}; "
            f"this node accepts: {known}"
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        hint = properties.get(missing, {}).get("description", "")
        return f"property {missing!r} is required" + (f" ({hint})" if hint else "")
    if error.validator == "enum":
        return f"property {where!r} is {error.instance!r}; use one of: " + ", ".join(
            str(v) for v in error.validator_value
        )
    return f"property {where!r}: {error.message}"
