"""Opening buses by URL, the multi-tenant router, entity events from in-process writes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.messaging import (
    ENTITY_EVENTS,
    EntityEvent,
    LocalMessageBus,
    TenantBuses,
    UpdateType,
    bus_from_url,
    entity_topic,
    settings_bus_url,
)
from workbench.messaging.registry import redact_url, sqlite_path
from workbench.messaging.sqlite_log import SqliteLogBus
from workbench.messaging.tenants import service_bus
from workbench.settings import Settings
from workbench.testing.message_bus_contract import collect


def test_memory_urls_give_one_bus_per_name_and_tenant() -> None:
    assert bus_from_url("memory://", "acme") is bus_from_url("memory://", "acme")
    assert bus_from_url("memory://", "acme") is not bus_from_url("memory://", "beta")
    assert bus_from_url("memory://x", "acme") is not bus_from_url("memory://", "acme")
    assert bus_from_url("memory://", "acme").tenant == "acme"


def test_sqlite_urls_name_a_file_per_tenant(tmp_path: Path) -> None:
    assert (
        sqlite_path(f"sqlite:///{tmp_path}/{{tenant}}/bus.db", "acme") == tmp_path / "acme/bus.db"
    )
    assert sqlite_path(f"sqlite:///{tmp_path}", "acme") == tmp_path / "acme.bus.db"
    assert sqlite_path(f"sqlite:////{tmp_path}", "acme") == tmp_path / "acme.bus.db"
    bus = bus_from_url(f"sqlite:///{tmp_path}", "acme")
    try:
        assert isinstance(bus, SqliteLogBus)
        assert bus.path == tmp_path / "acme.bus.db"
    finally:
        bus.close()
    with pytest.raises(ValidationError, match="absolute path"):
        bus_from_url("sqlite://relative/bus.db", "acme")


def test_unknown_schemes_and_tenant_ids_are_explained_without_the_password() -> None:
    with pytest.raises(ValidationError, match=r"kafka://u:\*\*\*@host.*memory://") as caught:
        bus_from_url("kafka://u:secret@host:9092", "acme")
    assert "secret" not in str(caught.value)
    with pytest.raises(ValidationError, match="tenant id"):
        bus_from_url("memory://", "Not A Tenant")
    assert redact_url("amqp://wb:pw@h:5672/") == "amqp://wb:***@h:5672/"


def test_the_platform_default_is_the_embedded_log_of_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, bus_url="")
    assert settings_bus_url(settings) == f"sqlite:///{tmp_path}/tenants/{{tenant}}/bus.db"
    assert settings_bus_url(Settings(home=tmp_path, bus_url="memory://")) == "memory://"
    assert isinstance(service_bus(settings), LocalMessageBus)  # an app built in process
    routed = service_bus(settings, embedded_default=True)  # a service in its own process
    assert isinstance(routed, TenantBuses)
    routed.close()


def test_tenant_buses_route_entity_events_to_the_tenant_bus_by_type_and_kind(
    tmp_path: Path,
) -> None:
    buses = TenantBuses(f"sqlite:///{tmp_path}/{{tenant}}/bus.db")
    event = EntityEvent("acme", UpdateType.DELETE, "a" * 24, "Basic/Asset", {"rtId": "a" * 24})

    async def scenario() -> tuple[Any, Any]:
        legacy = buses.subscribe(entity_topic("acme"))
        deletes = buses.for_tenant("acme").subscribe(ENTITY_EVENTS, "#.DELETE")
        other = buses.for_tenant("beta").subscribe(ENTITY_EVENTS)
        buses.publish(entity_topic("acme"), event)
        (seen,) = await collect(aiter(legacy), 1)
        (deleted,) = await collect(aiter(deletes), 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(other)), 0.3)
        for subscription in (legacy, deletes, other):
            await subscription.close()
        return seen, deleted

    try:
        seen, deleted = asyncio.run(scenario())
        assert seen == event
        assert deleted == event
        assert (tmp_path / "acme" / "bus.db").exists()
        with pytest.raises(ValidationError, match="names no tenant"):
            buses.publish("entity-events", event)
    finally:
        buses.close()
