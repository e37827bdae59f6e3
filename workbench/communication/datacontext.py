"""The JSON data context one pipeline execution works on, addressed with JSONPath.

Reads use the python-jsonpath library (RFC 9535 plus its extensions: ``$.a.b``, ``$.items[*].x``,
filters); a bare name ``x`` means ``$.x``. Writes go to a *singular* path (names and indices
only, parsed by the same library): missing objects on the way are created.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import Any

import jsonpath
from jsonpath.exceptions import JSONPathError

from workbench.errors import ValidationError

__all__ = [
    "DataContext",
    "DocumentMode",
    "TargetValueKind",
    "WriteMode",
    "compile_path",
    "normalize_path",
    "target_segments",
]


class WriteMode(StrEnum):
    """How a value is written to ``targetPath``."""

    OVERWRITE = "Overwrite"
    APPEND = "Append"
    PREPEND = "Prepend"
    MERGE = "Merge"


class TargetValueKind(StrEnum):
    """``Simple``: the value as it is; ``Array``: the target holds a list of values."""

    SIMPLE = "Simple"
    ARRAY = "Array"


class DocumentMode(StrEnum):
    """``Extend``: write into the context; ``Replace``: the value becomes the whole context."""

    EXTEND = "Extend"
    REPLACE = "Replace"


def normalize_path(path: str) -> str:
    """``x`` → ``$.x``; JSONPath expressions are returned unchanged."""
    path = path.strip()
    if not path:
        return "$"
    if path.startswith("$") or path.startswith("@"):
        return path
    return "$." + path


_COMPILED: dict[str, Any] = {}


def compile_path(path: str) -> Any:
    """The compiled JSONPath of ``path`` (cached); ValidationError naming the path if bad."""
    normalized = normalize_path(path)
    compiled = _COMPILED.get(normalized)
    if compiled is None:
        try:
            compiled = jsonpath.compile(normalized)
        except JSONPathError as exc:
            raise ValidationError(
                f"{path!r} is not a valid JSONPath ({exc}); write e.g. $.reading.voltage or "
                "$.items[*].value"
            ) from exc
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        _COMPILED[normalized] = compiled
    return compiled


def target_segments(path: str) -> list[str | int]:
    """The names and indices of a singular path (``$.a.b[0]`` → ``['a', 'b', 0]``)."""
    compiled = compile_path(path)
    if not compiled.singular_query():
        raise ValidationError(
            f"target path {path!r} may match several places; a target path names one place "
            "(names and indices only, e.g. $.reading.voltage or $.items[0])"
        )
    segments: list[str | int] = []
    for segment in compiled.segments:
        (selector,) = segment.selectors
        index = getattr(selector, "index", None)
        segments.append(index if index is not None else selector.name)
    return segments


class DataContext:
    """One execution's JSON document; nodes read with :meth:`get` and write with :meth:`set`."""

    def __init__(self, data: Any = None) -> None:
        self.data: Any = {} if data is None else data

    def get_all(self, path: str) -> list[Any]:
        """Every value ``path`` matches (an empty list when none)."""
        return list(compile_path(path).findall(self.data))

    def get(self, path: str, default: Any = None) -> Any:
        """The value at ``path``: the single match, a list when a wildcard path matches several,
        ``default`` when nothing matches."""
        compiled = compile_path(path)
        found = compiled.findall(self.data)
        if not found:
            return default
        if compiled.singular_query():
            return found[0]
        return list(found)

    def exists(self, path: str) -> bool:
        return bool(compile_path(path).findall(self.data))

    def set(
        self,
        path: str,
        value: Any,
        *,
        mode: WriteMode = WriteMode.OVERWRITE,
        kind: TargetValueKind = TargetValueKind.SIMPLE,
        document: DocumentMode = DocumentMode.EXTEND,
    ) -> None:
        """Write ``value`` at the singular ``path`` with ``mode`` (see :class:`WriteMode`)."""
        segments = target_segments(path)
        if document is DocumentMode.REPLACE and not segments:
            self.data = value
            return
        if not segments:
            self.data = _combine(self.data, value, mode, kind, path)
            return
        parent = self.data
        if not isinstance(parent, dict | list):
            parent = self.data = {}
        for position, segment in enumerate(segments[:-1]):
            following = segments[position + 1]
            parent = _child(parent, segment, [] if isinstance(following, int) else {}, path)
        last = segments[-1]
        current = _read(parent, last)
        combined = _combine(current, value, mode, kind, path)
        _write(parent, last, combined, path)

    def remove(self, path: str) -> None:
        segments = target_segments(path)
        if not segments:
            self.data = {}
            return
        parent = self.data
        for segment in segments[:-1]:
            parent = _read(parent, segment)
            if parent is None:
                return
        last = segments[-1]
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif (
            isinstance(parent, list)
            and isinstance(last, int)
            and -len(parent) <= last < len(parent)
        ):
            del parent[last]

    def snapshot(self) -> Any:
        """A deep copy of the document (for the debugging view)."""
        return copy.deepcopy(self.data)


def _read(container: Any, segment: str | int) -> Any:
    if isinstance(container, dict):
        return container.get(segment)
    if isinstance(container, list) and isinstance(segment, int):
        return container[segment] if -len(container) <= segment < len(container) else None
    return None


def _write(container: Any, segment: str | int, value: Any, path: str) -> None:
    if isinstance(container, dict):
        container[segment] = value
        return
    if isinstance(container, list) and isinstance(segment, int):
        if segment == len(container):
            container.append(value)
            return
        if -len(container) <= segment < len(container):
            container[segment] = value
            return
        raise ValidationError(
            f"cannot write {path!r}: index {segment} is beyond the end of a list of "
            f"{len(container)}; append instead (targetValueWriteMode: Append)"
        )
    raise ValidationError(
        f"cannot write {path!r}: {segment!r} is inside a {type(container).__name__}, "
        "not an object or list"
    )


def _child(container: Any, segment: str | int, empty: Any, path: str) -> Any:
    child = _read(container, segment)
    if not isinstance(child, dict | list):
        child = empty
        _write(container, segment, child, path)
    return child


def _combine(current: Any, value: Any, mode: WriteMode, kind: TargetValueKind, path: str) -> Any:
    if mode is WriteMode.OVERWRITE:
        if kind is TargetValueKind.ARRAY and not isinstance(value, list):
            return [value]
        return value
    if mode is WriteMode.MERGE:
        if isinstance(current, dict) and isinstance(value, dict):
            return {**current, **value}
        if isinstance(current, list) and isinstance(value, list):
            return [*current, *value]
        return value
    items = value if isinstance(value, list) and kind is TargetValueKind.ARRAY else [value]
    existing = [] if current is None else current if isinstance(current, list) else [current]
    if mode is WriteMode.APPEND:
        return [*existing, *items]
    return [*items, *existing]
