"""Value nodes of the catalogue: text (``Concat@1``, ``FormatString@1``, ``Hash@1``), types and
times (``ConvertDataType@1``, ``DateTime@1``) and arrays (``Distinct@1``, ``SumAggregation@1``,
``Join@1``). Each reads ``path`` and writes ``targetPath`` with the common write settings."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.schema import enum_schema

__all__ = ["ARGUMENTS_SCHEMA", "NODES", "fill_template"]

_PATH = {"type": "string", "description": "a JSONPath ($.a.b)"}
_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")

#: the ``arguments`` of a template: each placeholder name with the path of its value
ARGUMENTS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "path": _PATH},
        "required": ["name", "path"],
        "additionalProperties": False,
    },
}


def fill_template(node: Node, template: str, values: dict[str, Any], prop: str) -> str:
    """``template`` with each ``{name}`` / ``{name:spec}`` replaced by ``values[name]``; a
    name without a value, or a value the spec cannot format, fails ``node`` naming ``prop``."""

    def replace(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2) or ""
        if name not in values:
            raise node.error(
                f"{{{name}}} has no argument; add {{name: {name}, path: ...}} to arguments", prop
            )
        value = values[name]
        try:
            return format(value, spec) if spec else ("" if value is None else str(value))
        except (ValueError, TypeError) as exc:
            raise node.error(f"{{{name}:{spec}}} cannot format {value!r}: {exc}", prop) from exc

    return _PLACEHOLDER.sub(replace, template)


def _each(value: Any, func: Any) -> Any:
    return [func(v) for v in value] if isinstance(value, list) else func(value)


def _canonical(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _item_value(item: Any, path: str | None) -> Any:
    return DataContext(item).get(path) if path else item


class Concat(Node):
    """Concatenates the values at ``paths`` in order: arrays into one array, anything else as
    text joined by ``separator`` (default empty)."""

    type_name = "Concat@1"
    properties: ClassVar[dict[str, Any]] = {
        "paths": {"type": "array", "items": _PATH, "minItems": 1},
        "separator": {"type": "string"},
    }
    required = ("paths",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        values = [context.get(path) for path in self.prop("paths")]
        if values and all(isinstance(v, list) or v is None for v in values):
            self.write(context, [item for v in values for item in (v or [])])
            return
        separator = str(self.prop("separator", ""))
        self.write(context, separator.join("" if v is None else _canonical(v) for v in values))


class FormatString(Node):
    """Writes ``format`` with each ``{name}`` (or ``{name:spec}``, a Python format spec such as
    ``.2f``) replaced by the value at the path the ``arguments`` give for that name."""

    type_name = "FormatString@1"
    properties: ClassVar[dict[str, Any]] = {
        "format": {"type": "string", "description": 'e.g. "{meter}: {value:.1f} kWh"'},
        "arguments": ARGUMENTS_SCHEMA,
    }
    required = ("format",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        values = {a["name"]: context.get(a["path"]) for a in self.prop("arguments", [])}
        self.write(context, fill_template(self, str(self.prop("format")), values, "format"))


_ALGORITHMS = ["Sha256", "Sha1", "Sha512", "Md5"]


class Hash(Node):
    """The hash of the value at ``path`` (text as UTF-8, anything else as canonical JSON):
    ``algorithm`` Sha256 (default), Sha1, Sha512, Md5; ``encoding`` Hex (default) or Base64."""

    type_name = "Hash@1"
    properties: ClassVar[dict[str, Any]] = {
        "algorithm": enum_schema(_ALGORITHMS),
        "encoding": enum_schema(["Hex", "Base64"]),
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        algorithm = self.enum("algorithm", _ALGORITHMS, "Sha256").lower()
        hex_out = self.enum("encoding", ["Hex", "Base64"], "Hex") == "Hex"
        digest = hashlib.new(algorithm, _canonical(context.get(self.path)).encode()).digest()
        self.write(context, digest.hex() if hex_out else base64.b64encode(digest).decode())


class Distinct(Node):
    """The items of the array at ``path`` without repeats (the first kept, order kept); with
    ``keyPath`` two items are the same when the values at ``keyPath`` in them are equal."""

    type_name = "Distinct@1"
    properties: ClassVar[dict[str, Any]] = {"keyPath": _PATH}

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        items = _array(self, context.get(self.path))
        seen: set[str] = set()
        out = []
        for item in items:
            key = _canonical(_item_value(item, self.prop("keyPath")))
            if key not in seen:
                seen.add(key)
                out.append(item)
        self.write(context, out)


class SumAggregation(Node):
    """The sum of the array at ``path`` (of the values at ``valuePath`` in its items); with
    ``groupByPath`` one ``{key, sum, count}`` per distinct value at that path, in first-seen
    order. Missing values are skipped; a value that is not a number is an error."""

    type_name = "SumAggregation@1"
    properties: ClassVar[dict[str, Any]] = {"valuePath": _PATH, "groupByPath": _PATH}

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        groups: dict[str, dict[str, Any]] = {}
        group_path = self.prop("groupByPath")
        for index, item in enumerate(_array(self, context.get(self.path))):
            value = _item_value(item, self.prop("valuePath"))
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(f"item {index}: {value!r} is not a number", "valuePath")
            key = _item_value(item, group_path) if group_path else None
            group = groups.setdefault(_canonical(key), {"key": key, "sum": 0, "count": 0})
            group["sum"] += value
            group["count"] += 1
        if group_path:
            self.write(context, list(groups.values()))
        else:
            self.write(context, next(iter(groups.values()), {"sum": 0})["sum"])


_TYPES = ["String", "Integer", "Double", "Boolean", "DateTime"]


class ConvertDataType(Node):
    """Converts the value at ``path`` (each item of an array) to ``targetType``: String,
    Integer, Double, Boolean (true/false, yes/no, on/off, 1/0) or DateTime (ISO 8601 in UTC,
    from ISO text or Unix seconds); a value that does not convert is an error naming it."""

    type_name = "ConvertDataType@1"
    properties: ClassVar[dict[str, Any]] = {"targetType": enum_schema(_TYPES)}
    required = ("targetType",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        target = self.enum("targetType", _TYPES, "String")

        def convert(value: Any) -> Any:
            if value is None:
                return None
            try:
                return _convert(value, target)
            except (ValueError, TypeError, OverflowError) as exc:
                raise self.error(f"{value!r} is not a {target}: {exc}", "targetType") from exc

        self.write(context, _each(context.get(self.path), convert))


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(value: Any, target: str) -> Any:
    if target == "String":
        return _canonical(value)
    if target == "Integer":
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not number.is_integer():
            raise ValueError("it has a fraction")
        return int(number)
    if target == "Double":
        return float(value)
    if target == "Boolean":
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("write true/false, yes/no, on/off or 1/0")
    return _to_datetime(value).isoformat()


def _to_datetime(value: Any, pattern: str | None = None) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    moment = (
        datetime.strptime(str(value), pattern)
        if pattern
        else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    if moment.tzinfo is None:
        raise ValueError("the time has no zone; give a UTC offset (+00:00 or Z)")
    return moment.astimezone(UTC)


_OPERATIONS = ["Now", "Parse", "Format", "ToUnixSeconds", "AddSeconds"]


class DateTimeNode(Node):
    """Times: ``operation`` Now (the current UTC time), Parse (the value at ``path``, ISO 8601
    or ``format`` (strptime), to ISO 8601 in UTC), Format (to text with ``format``, strftime),
    ToUnixSeconds, AddSeconds (``seconds``, may be negative). Writes ``targetPath``."""

    type_name = "DateTime@1"
    properties: ClassVar[dict[str, Any]] = {
        "operation": enum_schema(_OPERATIONS),
        "format": {"type": "string", "description": "strptime/strftime pattern, %Y-%m-%d ..."},
        "seconds": {"type": "number"},
    }
    required = ("operation",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        operation = self.enum("operation", _OPERATIONS, "Now")
        if operation == "Now":
            self.write(context, datetime.now(UTC).isoformat())
            return
        pattern = self.prop("format")
        if operation == "Format" and not pattern:
            raise self.error("Format needs format (e.g. %Y-%m-%d %H:%M)", "format")

        def one(value: Any) -> Any:
            try:
                moment = _to_datetime(value, pattern if operation == "Parse" else None)
            except (ValueError, TypeError, OverflowError) as exc:
                raise self.error(f"{value!r} is not a time: {exc}", "path") from exc
            if operation == "Format":
                return moment.strftime(pattern)
            if operation == "ToUnixSeconds":
                return moment.timestamp()
            if operation == "AddSeconds":
                return datetime.fromtimestamp(
                    moment.timestamp() + float(self.prop("seconds", 0)), UTC
                ).isoformat()
            return moment.isoformat()

        self.write(context, _each(context.get(self.path), one))


class Join(Node):
    """Joins the array at ``path`` with the array at ``rightPath``: each left item whose value at
    ``keyPath`` equals a right item's value at ``rightKeyPath`` (default ``keyPath``) is merged
    with it (the right item's keys win, or it goes under ``rightTargetKey``). ``joinType``
    Inner (default: unmatched left items are dropped) or Left (kept as they are)."""

    type_name = "Join@1"
    properties: ClassVar[dict[str, Any]] = {
        "rightPath": _PATH,
        "keyPath": _PATH,
        "rightKeyPath": _PATH,
        "rightTargetKey": {"type": "string"},
        "joinType": enum_schema(["Inner", "Left"]),
    }
    required = ("rightPath", "keyPath")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        key_path = self.prop("keyPath")
        right_key = self.prop("rightKeyPath") or key_path
        right: dict[str, list[Any]] = {}
        for item in _array(self, context.get(self.prop("rightPath")), "rightPath"):
            right.setdefault(_canonical(_item_value(item, right_key)), []).append(item)
        inner = self.enum("joinType", ["Inner", "Left"], "Inner") == "Inner"
        nest = self.prop("rightTargetKey")
        out: list[Any] = []
        for item in _array(self, context.get(self.path)):
            matches = right.get(_canonical(_item_value(item, key_path)), [])
            if not matches and not inner:
                out.append(item)
            for match in matches:
                left = dict(item) if isinstance(item, dict) else {"value": item}
                if nest:
                    left[nest] = match
                elif isinstance(match, dict):
                    left.update(match)
                out.append(left)
        self.write(context, out)


def _array(node: Node, value: Any, property: str = "path") -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise node.error(f"expects an array, got {type(value).__name__}", property)
    return value


NODES = [
    Concat,
    FormatString,
    Hash,
    Distinct,
    SumAggregation,
    ConvertDataType,
    DateTimeNode,
    Join,
]
