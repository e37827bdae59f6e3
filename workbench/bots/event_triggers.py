"""Event schedules: bots that run on entity events from the bus.

A bot with ``--on-event TYPE[:INSERT,UPDATE,DELETE]`` (and optionally ``event_filter`` in its
metadata: attribute → value, or a list of allowed values) runs when an entity of ``TYPE`` is
written in its tenant with one of those update kinds (all three when none is named) and its
attributes match the filter. The run's trigger is ``event:<TYPE>.<KIND>`` and it gets the
parameter ``event``: ``{"rtId", "ckTypeId", "updateType", "entity"}``.

:class:`EntityEventTrigger` follows each tenant that has event bots with one member of the
durable group ``workbench.bot-service`` on the tenant's entity topic: events published while the
Bot Service is down wait for it, and one event fires a bot once even with several Bot Service
replicas. A message is acknowledged after the runs it fires are queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from workbench.bots.schedules import Schedule
from workbench.messaging.base import EntityEvent, MessageBus, entity_topic

__all__ = [
    "GROUP",
    "EntityEventTrigger",
    "event_matches",
    "event_parameter",
    "tenants_with_event_bots",
]

log = logging.getLogger("workbench.bots.event_triggers")

GROUP = "workbench.bot-service"


def event_matches(schedule: Schedule, event: EntityEvent) -> bool:
    """Whether ``event`` fires a bot of ``schedule`` (kind ``event``)."""
    if schedule.kind != "event" or event.ck_type_id != schedule.event_type:
        return False
    kind = getattr(event.update_type, "value", event.update_type)
    if schedule.event_kinds and kind not in schedule.event_kinds:
        return False
    for name, wanted in schedule.event_filter.items():
        value = event.entity.get(name)
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if value not in allowed:
            return False
    return True


def event_parameter(event: EntityEvent) -> dict[str, Any]:
    """The ``event`` parameter of a run that ``event`` fired."""
    return {
        "rtId": event.rt_id,
        "ckTypeId": event.ck_type_id,
        "updateType": getattr(event.update_type, "value", event.update_type),
        "entity": event.entity,
    }


class EntityEventTrigger:
    """Follows the entity events of tenants (an event loop in a thread of its own) and hands
    each to ``on_event(tenant_id, event)`` (called in a worker thread)."""

    def __init__(self, bus: MessageBus, on_event: Callable[[str, EntityEvent], Any]) -> None:
        self.bus = bus
        self.on_event = on_event
        self._loop = asyncio.new_event_loop()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="bot-event-trigger"
        )
        self._thread.start()
        #: tenants whose consumer has joined the group (tests wait for it)
        self.following: dict[str, threading.Event] = {}

    def follow(self, tenants: set[str]) -> None:
        """Follow exactly ``tenants`` (start new consumers, stop the others)."""
        for tenant in tenants - set(self.following):
            self.following[tenant] = threading.Event()
            self._loop.call_soon_threadsafe(self._start, tenant)
        for tenant in set(self.following) - tenants:
            self.following.pop(tenant)
            self._loop.call_soon_threadsafe(self._cancel, tenant)

    def _start(self, tenant: str) -> None:
        self._tasks[tenant] = self._loop.create_task(self._consume(tenant))

    def _cancel(self, tenant: str) -> None:
        task = self._tasks.pop(tenant, None)
        if task is not None:
            task.cancel()

    async def _consume(self, tenant: str) -> None:
        while True:
            try:
                await self.bus.ensure_group(entity_topic(tenant), GROUP)
                async with self.bus.consume(entity_topic(tenant), group=GROUP) as consumer:
                    ready = self.following.get(tenant)
                    if ready is not None:
                        ready.set()
                    async for delivery in consumer:
                        if isinstance(delivery.body, EntityEvent):
                            await asyncio.to_thread(self.on_event, tenant, delivery.body)
                        await delivery.ack()
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus went away: follow again once it is back
                log.exception("following the entity events of %s failed; retrying", tenant)
                await asyncio.sleep(5)

    def close(self) -> None:
        async def stop() -> None:
            for task in self._tasks.values():
                task.cancel()
            for task in list(self._tasks.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()


def tenants_with_event_bots(bots: Mapping[Any, Any]) -> set[str]:
    """The tenants among deployed ``bots`` with an event schedule."""
    return {b.tenant for b in bots.values() if b.settings.schedule.kind == "event"}
