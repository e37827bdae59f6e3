"""Trigger nodes: what starts an execution of a pipeline.

Manual runs (``FromExecutePipelineCommand@1``) and cron runs (``FromPipelineTriggerEvent@1``,
fired by the controller from a PipelineTrigger) come to the adapter as commands; the other
triggers run inside the adapter (:meth:`TriggerNode.start`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from workbench.communication.node import Fire, TriggerHost, TriggerNode
from workbench.communication.nodes.timespan import TIMESPAN_PATTERN, parse_timespan
from workbench.communication.schema import enum_schema, enum_value
from workbench.messaging.base import ENTITY_EVENTS, EntityEvent, dataflow_topic

__all__ = ["NODES"]

_UPDATE_TYPES = ["Insert", "Update", "Replace", "Delete"]


class FromPolling(TriggerNode):
    """Fires every ``interval`` (a TimeSpan, e.g. 00:00:10) with ``input`` as the data context."""

    type_name = "FromPolling@1"
    trigger_type = "Scheduled"
    properties: ClassVar[dict[str, Any]] = {
        "interval": {
            "type": ["string", "number"],
            "pattern": TIMESPAN_PATTERN,
            "description": "time between executions, hh:mm:ss",
        },
        "input": {"description": "the data context each execution starts with"},
        "fireOnStart": {"type": "boolean", "description": "fire once at start (default true)"},
    }
    required = ("interval",)

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        interval = max(parse_timespan(self.prop("interval")), 0.01)
        if not self.prop("fireOnStart", True):
            await asyncio.sleep(interval)
        while True:
            began = asyncio.get_running_loop().time()
            await fire(self.prop("input") or {}, self.trigger_type)
            elapsed = asyncio.get_running_loop().time() - began
            await asyncio.sleep(max(interval - elapsed, 0.0))


class FromExecutePipelineCommand(TriggerNode):
    """Runs the pipeline when asked (API, CLI, GraphQL: "execute pipeline")."""

    type_name = "FromExecutePipelineCommand@1"
    trigger_type = "Manual"


class FromPipelineTriggerEvent(TriggerNode):
    """Runs the pipeline when a PipelineTrigger's cron fires (the controller sends it)."""

    type_name = "FromPipelineTriggerEvent@1"
    trigger_type = "Scheduled"


class FromPipelineDataEvent(TriggerNode):
    """Runs the pipeline for each data event another pipeline of the data flow sends to it
    (``ToPipelineDataEvent@1``); the context is what the sender wrote."""

    type_name = "FromPipelineDataEvent@1"
    trigger_type = "Event"
    properties: ClassVar[dict[str, Any]] = {
        "maxConcurrency": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "description": "executions in flight at once (default 1: one after the other); "
            "each event is acknowledged when its execution ends",
        },
    }

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        pipeline = getattr(host, "pipeline_rt_id", None)
        data_flow = getattr(host, "data_flow_rt_id", None)
        if not pipeline or not data_flow:
            raise self.error(
                "the pipeline has no data flow: make it a child (System/ParentChild) of a DataFlow"
            )
        concurrency = int(self.prop("maxConcurrency", 1))
        consumer = host.consume(dataflow_topic(data_flow), pipeline, f"pipeline-{pipeline}")
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()

        async def one(delivery: Any) -> None:
            try:
                await fire(delivery.body, self.trigger_type)
                await delivery.ack()
            finally:
                slots.release()

        async with consumer:
            try:
                async for delivery in consumer:
                    if concurrency == 1:
                        await fire(delivery.body, self.trigger_type)
                        await delivery.ack()
                        continue
                    await slots.acquire()
                    task = asyncio.create_task(one(delivery))
                    running.add(task)
                    task.add_done_callback(running.discard)
            finally:
                for task in list(running):
                    task.cancel()


class FromHttpRequest(TriggerNode):
    """Runs the pipeline for each HTTP request to ``/{tenantId}{path}`` on the adapter; the
    context holds ``body``, ``query``, ``path``, ``method`` and ``files``."""

    type_name = "FromHttpRequest@1"
    trigger_type = "Event"
    properties: ClassVar[dict[str, Any]] = {
        "method": enum_schema(["GET", "POST", "PUT", "PATCH", "DELETE"]),
        "path": {"type": "string", "pattern": "^/", "description": "route, e.g. /readings"},
    }
    required = ("path",)

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        host.add_http_route(str(self.prop("method", "POST")).upper(), self.prop("path"), fire)


class FromWatchRtEntity(TriggerNode):
    """Runs the pipeline when entities of ``ckTypeId`` (or the one ``rtId``) change; the context
    holds the entity at ``$.Document`` and ``$.UpdateType``."""

    type_name = "FromWatchRtEntity@1"
    trigger_type = "Event"
    properties: ClassVar[dict[str, Any]] = {
        "ckTypeId": {"type": "string", "description": "the CK type to watch, Library/Type"},
        "rtId": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "updateTypes": {"type": "array", "items": enum_schema(_UPDATE_TYPES)},
        "fieldFilters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attributePath": {"type": "string"},
                    "operator": {"type": "string"},
                    "comparisonValue": {},
                },
                "required": ["attributePath"],
            },
        },
    }
    required = ("ckTypeId",)

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        wanted = {enum_value(u, _UPDATE_TYPES) for u in self.prop("updateTypes") or _UPDATE_TYPES}
        if "Replace" in wanted:
            wanted.add("Update")
        rt_id = self.prop("rtId")
        filters = self.prop("fieldFilters") or []
        subscription = host.subscribe(ENTITY_EVENTS, f"{self.prop('ckTypeId')}.*")
        try:
            async for event in subscription:
                if not isinstance(event, EntityEvent):
                    continue
                kind = enum_value(event.update_type.value, _UPDATE_TYPES)
                if kind not in wanted or (rt_id and event.rt_id != rt_id):
                    continue
                if not all(_matches(event.entity, f) for f in filters):
                    continue
                await fire({"Document": event.entity, "UpdateType": kind}, self.trigger_type)
        finally:
            await subscription.close()


def _matches(entity: dict[str, Any], condition: dict[str, Any]) -> bool:
    value = entity.get(condition["attributePath"])
    operator = enum_value(condition.get("operator", "Equals"), ["Equals", "NotEquals"])
    expected = condition.get("comparisonValue")
    return (value == expected) if operator == "Equals" else (value != expected)


NODES = [
    FromPolling,
    FromExecutePipelineCommand,
    FromPipelineTriggerEvent,
    FromPipelineDataEvent,
    FromHttpRequest,
    FromWatchRtEntity,
]
