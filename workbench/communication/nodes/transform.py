"""Transform nodes: reshape and compute values of the data context, log and print it."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.schema import enum_schema, enum_value

__all__ = ["NODES"]

_PATH = {"type": "string"}
_NUMBER_OR_PATH = {"type": "number"}


def _each(value: Any, func: Any) -> Any:
    return [func(v) for v in value] if isinstance(value, list) else func(value)


class Project(Node):
    """Keeps (``inclusion: Include``, default) or drops (``Exclude``) the ``fields`` of the
    object (or each object of the array) at ``path``; writes the result to ``targetPath``."""

    type_name = "Project@1"
    properties: ClassVar[dict[str, Any]] = {
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "inclusion": enum_schema(["Include", "Exclude"]),
                },
                "required": ["path"],
                "additionalProperties": False,
            },
            "minItems": 1,
        },
    }
    required = ("fields",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        fields = self.prop("fields")
        include = [
            f["path"]
            for f in fields
            if enum_value(f.get("inclusion", "Include"), ["Include", "Exclude"]) == "Include"
        ]
        exclude = [f["path"] for f in fields if f["path"] not in include]

        def project(item: Any) -> Any:
            source = DataContext(item)
            if include:
                out = DataContext({})
                for path in include:
                    if source.exists(path):
                        out.set(path, source.get(path))
                result = out
            else:
                result = DataContext(json.loads(json.dumps(item, default=str)))
            for path in exclude:
                result.remove(path)
            return result.data

        self.write(context, _each(context.get(self.path), project))


class Flatten(Node):
    """Flattens the value at ``path``: nested arrays into one array (``depth`` levels, default
    all), an object's nested objects into dotted keys (``separator``, default ``.``)."""

    type_name = "Flatten@1"
    properties: ClassVar[dict[str, Any]] = {
        "depth": {"type": "integer", "minimum": 1},
        "separator": {"type": "string"},
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        value = context.get(self.path)
        depth = int(self.prop("depth", 1_000))
        separator = str(self.prop("separator", "."))
        if isinstance(value, list):
            self.write(context, _flatten_list(value, depth))
        elif isinstance(value, dict):
            self.write(context, _flatten_dict(value, "", separator, depth))
        else:
            self.write(context, value)


def _flatten_list(items: list[Any], depth: int) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list) and depth > 0:
            out.extend(_flatten_list(item, depth - 1))
        else:
            out.append(item)
    return out


def _flatten_dict(value: dict[str, Any], prefix: str, separator: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(item, dict) and depth > 0:
            out.update(_flatten_dict(item, name, separator, depth - 1))
        else:
            out[name] = item
    return out


class Map(Node):
    """Builds a new object per item of ``path`` (an object or an array): each of ``mappings``
    copies the value at ``sourcePath`` (relative to the item) to ``targetPath`` in the new
    object, optionally translating it with ``valueMap``."""

    type_name = "Map@1"
    properties: ClassVar[dict[str, Any]] = {
        "mappings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sourcePath": {"type": "string"},
                    "targetPath": {"type": "string"},
                    "value": {},
                    "valueMap": {"type": "object"},
                    "defaultValue": {},
                },
                "required": ["targetPath"],
                "additionalProperties": False,
            },
            "minItems": 1,
        },
    }
    required = ("mappings",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        mappings = self.prop("mappings")

        def map_one(item: Any) -> Any:
            source = DataContext(item)
            out = DataContext({})
            for m in mappings:
                if "sourcePath" in m:
                    value = source.get(m["sourcePath"], m.get("defaultValue"))
                else:
                    value = m.get("value", m.get("defaultValue"))
                table = m.get("valueMap")
                if table is not None:
                    value = table.get(str(value), m.get("defaultValue", value))
                out.set(m["targetPath"], value)
            return out.data

        self.write(context, _each(context.get(self.path), map_one))


_MATH = [
    "Add",
    "Subtract",
    "Multiply",
    "Divide",
    "Modulo",
    "Power",
    "Round",
    "Floor",
    "Ceiling",
    "Abs",
    "Negate",
    "Min",
    "Max",
    "Sqrt",
]


class Math(Node):
    """Computes ``operator`` (Add, Subtract, Multiply, Divide, Modulo, Power, Round, Floor,
    Ceiling, Abs, Negate, Min, Max, Sqrt) of the number(s) at ``path`` with ``value`` (or the
    value at ``valuePath``; for Round: the decimals) and writes the result to ``targetPath``."""

    type_name = "Math@1"
    properties: ClassVar[dict[str, Any]] = {
        "operator": enum_schema(_MATH),
        "value": _NUMBER_OR_PATH,
        "valuePath": _PATH,
    }
    required = ("path", "operator")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        op = enum_value(self.prop("operator"), _MATH)
        operand = (
            context.get(self.prop("valuePath")) if "valuePath" in self.props else self.prop("value")
        )
        value = context.get(self.path)
        if value is None:
            raise self.error(f"no number at {self.path!r}", "path")

        def compute(x: Any) -> Any:
            if not isinstance(x, int | float) or isinstance(x, bool):
                raise self.error(f"{x!r} at {self.path!r} is not a number", "path")
            if op in ("Abs", "Negate", "Floor", "Ceiling", "Sqrt"):
                return {
                    "Abs": abs,
                    "Negate": lambda v: -v,
                    "Floor": math.floor,
                    "Ceiling": math.ceil,
                    "Sqrt": math.sqrt,
                }[op](x)
            if op == "Round":
                return round(x, int(operand or 0))
            if operand is None:
                raise self.error(f"{op} needs value or valuePath", "value")
            y = float(operand) if not isinstance(operand, int) else operand
            if op in ("Divide", "Modulo") and y == 0:
                raise self.error(f"{op} by zero", "value")
            binary: dict[str, Any] = {
                "Add": lambda: x + y,
                "Subtract": lambda: x - y,
                "Multiply": lambda: x * y,
                "Divide": lambda: x / y,
                "Modulo": lambda: x % y,
                "Power": lambda: x**y,
                "Min": lambda: min(x, y),
                "Max": lambda: max(x, y),
            }
            result = binary[op]()
            return result

        self.write(context, _each(value, compute))


class LinearScaler(Node):
    """Scales the number(s) at ``path`` linearly from [sourceMin, sourceMax] to
    [targetMin, targetMax] (``clamp`` keeps results inside the target range)."""

    type_name = "LinearScaler@1"
    properties: ClassVar[dict[str, Any]] = {
        "sourceMin": {"type": "number"},
        "sourceMax": {"type": "number"},
        "targetMin": {"type": "number"},
        "targetMax": {"type": "number"},
        "clamp": {"type": "boolean"},
    }
    required = ("path", "sourceMin", "sourceMax", "targetMin", "targetMax")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        s0, s1 = float(self.prop("sourceMin")), float(self.prop("sourceMax"))
        t0, t1 = float(self.prop("targetMin")), float(self.prop("targetMax"))
        if s0 == s1:
            raise self.error(
                "sourceMin equals sourceMax; the source range must not be empty", "sourceMax"
            )
        clamp = bool(self.prop("clamp", False))

        def scale(x: Any) -> float:
            if not isinstance(x, int | float):
                raise self.error(f"{x!r} at {self.path!r} is not a number", "path")
            y = t0 + (float(x) - s0) * (t1 - t0) / (s1 - s0)
            return min(max(y, min(t0, t1)), max(t0, t1)) if clamp else y

        self.write(context, _each(context.get(self.path), scale))


_LEVELS = ["Debug", "Information", "Warning", "Error"]


class Logger(Node):
    """Logs ``message`` and the value at ``path`` (if given) at ``level``."""

    type_name = "Logger@1"
    properties: ClassVar[dict[str, Any]] = {
        "message": {"type": "string"},
        "level": enum_schema(_LEVELS),
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        level = enum_value(self.prop("level", "Information"), _LEVELS)
        value = context.get(self.path) if "path" in self.props else None
        text = self.prop("message", "")
        if value is not None:
            text = f"{text} {json.dumps(value, default=str)}".strip()
        number = {
            "Debug": logging.DEBUG,
            "Information": logging.INFO,
            "Warning": logging.WARNING,
            "Error": logging.ERROR,
        }[level]
        env.log.log(number, text, extra={"pipeline": env.pipeline_name})
        env.output.append(text)


class PrintDebug(Node):
    """Prints the data context (or the value at ``path``) as JSON to the execution's output."""

    type_name = "PrintDebug@1"

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        value = context.get(self.path)
        text = json.dumps(value, indent=2, default=str)
        env.output.append(text)
        env.log.info("PrintDebug %s", text, extra={"pipeline": env.pipeline_name})


NODES = [Project, Flatten, Map, Math, LinearScaler, Logger, PrintDebug]
