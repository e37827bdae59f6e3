"""Control nodes: loops and branches that run child nodes (``transformations:``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.conditions import compare, operator_schema

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


NODES = [ForEach, For, If, Switch, SelectByPath]
