"""In-process writes publish entity events when the workbench has a bus (the CLI's case)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import workbench
from tests.conftest import DEMO_LIBRARY
from workbench.messaging import EntityEvent, LocalMessageBus, UpdateType, entity_topic
from workbench.messaging.entity_events import PublishingEntityService
from workbench.testing.message_bus_contract import collect


def test_creates_updates_and_deletes_become_events_after_the_write(tmp_path: Path) -> None:
    bus = LocalMessageBus()

    async def scenario() -> tuple[list[Any], Any]:
        subscription = bus.subscribe(entity_topic("energy"))
        with workbench.open(tmp_path / "wb") as wb:
            wb.publish_events_to(bus)
            tenant = wb.tenants.create("energy")
            tenant.ck.import_library(DEMO_LIBRARY)
            entities = tenant.entities
            assert isinstance(entities, PublishingEntityService)
            site = entities.create("Demo.Energy/Site", {"Name": "Linz"})
            entities.update(site.rt_id, {"Name": "Linz Plant"})
            entities.delete(site.rt_id)
            events = await collect(aiter(subscription), 3)
        await subscription.close()
        return events, site

    events, site = asyncio.run(scenario())
    assert all(isinstance(e, EntityEvent) for e in events)
    kinds = [e.update_type for e in events]
    assert kinds == [UpdateType.INSERT, UpdateType.UPDATE, UpdateType.DELETE]
    assert {e.rt_id for e in events} == {site.rt_id}
    assert events[1].entity["name"] == "Linz Plant"
    assert events[0].ck_type_id == "Demo.Energy/Site"


def test_without_a_bus_the_service_publishes_nothing(tmp_path: Path) -> None:
    with workbench.open(tmp_path / "wb") as wb:
        tenant = wb.tenants.create("energy")
        assert not isinstance(tenant.entities, PublishingEntityService)
