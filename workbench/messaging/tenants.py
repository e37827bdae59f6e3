"""``TenantBuses``: one bus per tenant behind the multi-tenant addresses ``tenants.<id>.<topic>``.

The Asset Repository serves every tenant through one :class:`MessageBus` object (its GraphQL
subscriptions subscribe to :func:`~workbench.messaging.base.entity_topic`). ``TenantBuses`` is that
object when the bus is configured by URL: it opens the tenant's bus with
:func:`~workbench.messaging.registry.bus_from_url` on first use and maps

* ``tenants.<id>.entities`` → the tenant bus's ``entity-events`` topic, routing key
  ``<ckTypeId>.<INSERT|UPDATE|DELETE>`` taken from the :class:`EntityEvent`;
* ``tenants.<id>.<topic>`` → ``<topic>`` on the tenant's bus.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.errors import ValidationError
from workbench.messaging.base import (
    DEFAULT_MAX_DELIVERIES,
    ENTITY_EVENTS,
    Consumer,
    DeadLetter,
    EntityEvent,
    MessageBus,
    OutgoingMessage,
    Subscription,
    entity_event_key,
)
from workbench.messaging.registry import bus_from_url, settings_bus_url
from workbench.settings import Settings

__all__ = ["TenantBuses", "service_bus"]


class TenantBuses(MessageBus):
    """Routes ``tenants.<id>.<topic>`` to the bus of tenant ``<id>`` opened from ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._buses: dict[str, MessageBus] = {}

    def for_tenant(self, tenant: str) -> MessageBus:
        """The bus of ``tenant`` (opened once, kept until :meth:`close`)."""
        with self._lock:
            bus = self._buses.get(tenant)
            if bus is None:
                bus = self._buses[tenant] = bus_from_url(self.url, tenant)
            return bus

    def _route(self, topic: str) -> tuple[MessageBus, str]:
        parts = topic.split(".", 2)
        if len(parts) != 3 or parts[0] != "tenants":
            raise ValidationError(
                f"topic {topic!r} names no tenant: a TenantBuses bus takes "
                "'tenants.<tenant>.<topic>' (for example workbench.messaging.entity_topic(id)); "
                "use for_tenant(id) for a tenant's own topics"
            )
        inner = ENTITY_EVENTS if parts[2] == "entities" else parts[2]
        return self.for_tenant(parts[1]), inner

    def publish(
        self,
        topic: str,
        message: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        bus, inner = self._route(topic)
        if inner == ENTITY_EVENTS and not key and isinstance(message, EntityEvent):
            key = entity_event_key(message.ck_type_id, message.update_type)
        bus.publish(inner, message, key=key, message_id=message_id, headers=headers)

    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        bus, inner = self._route(topic)
        return bus.subscribe(inner, pattern)

    def _split(
        self, messages: Sequence[OutgoingMessage]
    ) -> list[tuple[MessageBus, list[OutgoingMessage]]]:
        by_bus: dict[int, tuple[MessageBus, list[OutgoingMessage]]] = {}
        for message in messages:
            bus, inner = self._route(message.topic)
            key = message.key
            if inner == ENTITY_EVENTS and not key and isinstance(message.body, EntityEvent):
                key = entity_event_key(message.body.ck_type_id, message.body.update_type)
            routed = OutgoingMessage(inner, message.body, key, message.id, message.headers)
            by_bus.setdefault(id(bus), (bus, []))[1].append(routed)
        return list(by_bus.values())

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> None:
        for bus, batch in self._split(messages):
            bus.publish_all(batch)

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        for bus, batch in self._split(messages):
            await bus.publish_many(batch)

    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None:
        bus, inner = self._route(topic)
        await bus.ensure_group(inner, group, pattern)

    def consume(
        self,
        topic: str,
        pattern: str = "#",
        *,
        group: str,
        prefetch: int = 100,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> Consumer:
        bus, inner = self._route(topic)
        return bus.consume(
            inner, pattern, group=group, prefetch=prefetch, max_deliveries=max_deliveries
        )

    async def dead_letters(self, topic: str, group: str, *, limit: int = 100) -> list[DeadLetter]:
        bus, inner = self._route(topic)
        return await bus.dead_letters(inner, group, limit=limit)

    async def pending(self, topic: str, group: str) -> int:
        bus, inner = self._route(topic)
        return await bus.pending(inner, group)

    async def aclose(self) -> None:
        with self._lock:
            buses, self._buses = list(self._buses.values()), {}
        for bus in buses:
            await bus.aclose()

    def close(self) -> None:
        with self._lock:
            buses, self._buses = list(self._buses.values()), {}
        for bus in buses:
            bus.close()


def service_bus(settings: Settings, *, embedded_default: bool = False) -> MessageBus:
    """The bus a multi-tenant service uses: ``TenantBuses`` on the configured URL.

    Without ``WORKBENCH_BUS_URL``: the embedded SQLite log under the data directory when
    ``embedded_default`` (a service running as its own process), else a bus of this process."""
    if settings.bus_url.strip() or embedded_default:
        return TenantBuses(settings_bus_url(settings))
    from workbench.messaging.local import LocalMessageBus

    return LocalMessageBus()
