"""Entity events from in-process writes: an :class:`EntityService` that publishes what it wrote.

The Asset Repository publishes the events of its REST and GraphQL writes itself; processes that
write entities directly (the CLI working on a data directory, a notebook, an adapter writing in
process) use :class:`PublishingEntityService` so that GraphQL subscriptions served by another
process see their changes. Events go to :func:`~workbench.messaging.base.entity_topic` of the
tenant (on :class:`~workbench.messaging.tenants.TenantBuses`: the tenant bus's ``entity-events``
topic keyed ``<ckTypeId>.<INSERT|UPDATE|DELETE>``), after the batch is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from workbench.ck.model import CkModel
from workbench.messaging.base import (
    EntityEvent,
    MessageBus,
    OutgoingMessage,
    UpdateType,
    entity_topic,
)
from workbench.runtime.entity import Entity, EntityInput, EntityUpdate
from workbench.runtime.service import EntityService
from workbench.storage.base import EntityStore

__all__ = ["PublishingEntityService", "publish_entities"]


def publish_entities(
    bus: MessageBus, tenant_id: str, update_type: UpdateType, entities: Iterable[Entity]
) -> None:
    """One :class:`EntityEvent` per entity on the tenant's entity topic."""
    topic = entity_topic(tenant_id)
    bus.publish_all(
        [
            OutgoingMessage(
                topic, EntityEvent(tenant_id, update_type, e.rt_id, e.ck_type_id, e.to_dict())
            )
            for e in entities
        ]
    )


class PublishingEntityService(EntityService):
    """The runtime service of ``tenant_id`` that publishes an event per written entity."""

    def __init__(
        self,
        store: EntityStore,
        model: Callable[[], CkModel],
        *,
        tenant_id: str,
        bus: MessageBus,
    ) -> None:
        super().__init__(store, model)
        self.tenant_id = tenant_id
        self.bus = bus

    def apply(
        self,
        *,
        creates: Sequence[EntityInput] = (),
        updates: Sequence[EntityUpdate] = (),
        return_entities: bool = True,
    ) -> list[Entity]:
        written = super().apply(creates=creates, updates=updates, return_entities=True)
        split = len(creates)
        publish_entities(self.bus, self.tenant_id, UpdateType.INSERT, written[:split])
        publish_entities(self.bus, self.tenant_id, UpdateType.UPDATE, written[split:])
        return written if return_entities else []

    def delete(
        self, rt_ids: Sequence[str] | str, *, erase: bool = False, cascade: bool = False
    ) -> list[str]:
        ids = [rt_ids] if isinstance(rt_ids, str) else list(rt_ids)
        before = self.get_many(ids, include_archived=True)
        deleted = super().delete(ids, erase=erase, cascade=cascade)
        missing = [rt_id for rt_id in deleted if rt_id not in before]
        if missing:
            before.update(self.get_many(missing, include_archived=True))
        known = [before[rt_id] for rt_id in deleted if rt_id in before]
        publish_entities(self.bus, self.tenant_id, UpdateType.DELETE, known)
        return deleted
