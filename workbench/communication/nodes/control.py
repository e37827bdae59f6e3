"""Control nodes: loops and branches that run child nodes (``transformations:``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.conditions import compare, operator_schema
from workbench.communication.nodes.timespan import TIMESPAN_PATTERN, parse_timespan

__all__ = ["NODES"]

_PATH = {"type": "string"}


class ForEach(Node):
    """Runs its children once per item of the array at ``iterationPath`` (or ``path``); each
    iteration's context holds the item at ``$.key`` and the parent context at ``$.full``. With
    a ``targetPath``, the iterations' ``$.key`` values are written there as an array."""

    type_name = "ForEach@1"
    has_children = True
    properties: ClassVar[dict[str, Any]] = {
        "iterationPath": {**_PATH, "description": "the array to iterate"},
        "maxDegreeOfParallelism": {"type": "integer", "minimum": 1},
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        path = self.prop("iterationPath") or self.path
        items = context.get(path)
        if items is None:
            items = []
        if not isinstance(items, list):
            items = [items]
        parallel = int(self.prop("maxDegreeOfParallelism", 1))
        limit = asyncio.Semaphore(parallel)

        async def one(item: Any) -> Any:
            async with limit:
                child = DataContext({"key": item, "full": context.data})
                await self.run_children(child, env)
                return child.data.get("key") if isinstance(child.data, dict) else child.data

        if parallel == 1:
            results = [await one(item) for item in items]
        else:
            results = list(await asyncio.gather(*(one(item) for item in items)))
        if "targetPath" in self.props:
            self.write(context, results)


class For(Node):
    """Runs its children ``count`` times (or the number at ``countPath``) on the same context,
    writing the index (from 0) to ``indexTargetPath`` (default ``$.index``)."""

    type_name = "For@1"
    has_children = True
    properties: ClassVar[dict[str, Any]] = {
        "count": {"type": "integer", "minimum": 0},
        "countPath": _PATH,
        "indexTargetPath": _PATH,
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        count = self.prop("count")
        if count is None:
            if "countPath" not in self.props:
                raise self.error("give count or countPath", "count")
            count = context.get(self.prop("countPath"))
        if not isinstance(count, int) or count < 0:
            raise self.error(f"the count is {count!r}; it must be a whole number >= 0", "count")
        target = self.prop("indexTargetPath", "$.index")
        for index in range(count):
            context.set(target, index)
            await self.run_children(context, env)


class If(Node):
    """Runs its children when the value at ``path`` satisfies ``operator`` against ``value``
    (or the value at ``valuePath``)."""

    type_name = "If@1"
    has_children = True
    properties: ClassVar[dict[str, Any]] = {
        "operator": operator_schema(),
        "value": {"description": "the value to compare with"},
        "valuePath": _PATH,
    }
    required = ("path", "operator")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        found = context.get_all(self.path)
        value = found[0] if len(found) == 1 else (found or None)
        expected = (
            context.get(self.prop("valuePath")) if "valuePath" in self.props else self.prop("value")
        )
        if compare(self.prop("operator"), value, expected, bool(found)):
            await self.run_children(context, env)


class Switch(Node):
    """Runs the children of the first case whose ``value`` equals the value at ``path`` (or
    satisfies the case's ``operator``), else those of ``default``."""

    type_name = "Switch@1"
    properties: ClassVar[dict[str, Any]] = {
        "cases": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "value": {},
                    "operator": operator_schema(),
                    "transformations": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["transformations"],
                "additionalProperties": False,
            },
        },
        "default": {"type": "array", "items": {"type": "object"}},
    }
    required = ("path", "cases")

    @classmethod
    def child_groups(cls, item: Mapping[str, Any]) -> list[tuple[str, tuple[Any, ...], Any]]:
        groups: list[tuple[str, tuple[Any, ...], Any]] = []
        cases = item.get("cases")
        for index, case in enumerate(cases if isinstance(cases, list) else []):
            if isinstance(case, dict):
                groups.append(
                    (
                        f"cases[{index}]",
                        ("cases", index, "transformations"),
                        case.get("transformations"),
                    )
                )
        groups.append(("default", ("default",), item.get("default")))
        return groups

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        found = context.get_all(self.path)
        value = found[0] if len(found) == 1 else (found or None)
        for index, case in enumerate(self.prop("cases") or []):
            if compare(case.get("operator", "Equals"), value, case.get("value"), bool(found)):
                await self.run_children(context, env, f"cases[{index}]")
                return
        await self.run_children(context, env, "default")


class SelectByPath(Node):
    """Copies the value at ``path`` to ``targetPath`` (with ``documentMode: Replace`` and
    target ``$``, the selected value becomes the whole context)."""

    type_name = "SelectByPath@1"
    required = ("path",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        self.write(context, context.get(self.path))


class BufferData(Node):
    """Collects the value at ``path`` of many executions and runs its children once on the
    batch: when ``maxItems`` values are collected or ``bufferTime`` after the first, whichever
    comes first. The children's context holds the values, in arrival order, at ``targetPath``
    (default ``$.items``). Each execution waits until its batch ran and fails when the batch
    failed, so a trigger acknowledges a message only once its data is written (give the trigger
    concurrency, e.g. ``FromPipelineDataEvent@1`` ``maxConcurrency``, so batches fill)."""

    type_name = "BufferData@1"
    has_children = True
    properties: ClassVar[dict[str, Any]] = {
        "bufferTime": {
            "type": ["string", "number"],
            "pattern": TIMESPAN_PATTERN,
            "description": "longest wait after the first value (TimeSpan; default 00:00:01)",
        },
        "maxItems": {"type": "integer", "minimum": 1, "description": "batch size (default 100)"},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer_time = parse_timespan(self.prop("bufferTime", "00:00:01"))
        self.max_items = int(self.prop("maxItems", 100))
        self._items: list[Any] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._env: ExecutionEnvironment | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._items.append(context.get(self.path))
        self._waiting.append(done)
        self._env = self._env or env
        if len(self._items) >= self.max_items:
            await self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.buffer_time, self._flush_later)
        await done

    def _flush_later(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, waiting, env = self._items, self._waiting, self._env
        self._items, self._waiting, self._env = [], [], None
        if not items or env is None:
            return
        batch = DataContext({})
        batch.set(self.prop("targetPath", "$.items"), items)
        try:
            await self.run_children(batch, env)
        except BaseException as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future in waiting:
            if not future.done():
                future.set_result(None)


NODES = [ForEach, For, If, Switch, SelectByPath, BufferData]
