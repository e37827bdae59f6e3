"""Subscriptions receive entity events published by mutations through the bus."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import BUILDING, METER_1
from workbench.graphql import SchemaCache
from workbench.messaging.local import LocalMessageBus

SUBSCRIBE = """subscription($rtId: ID, $types: [UpdateType!]) {
  demoEnergyMeterEvents(rtId: $rtId, updateTypes: $types) {
    updateType rtId ckTypeId timestamp
    entity { rtVersion name ... on DemoEnergyEnergyMeter { voltage } parent { rtId } } } }"""


def test_subscription_receives_events_from_mutations(
    demo: Any, schemas: SchemaCache, bus: LocalMessageBus
) -> None:
    async def scenario() -> list[Any]:
        schema = schemas.get(demo)
        context = schemas.context(demo)
        stream = await schema.subscribe(SUBSCRIBE, {"types": ["INSERT", "UPDATE"]}, context=context)
        assert not isinstance(stream, type(None))
        assert hasattr(stream, "__anext__")
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)  # the subscription registers with the bus
        assert bus.subscriber_count(f"tenants.{demo.id}.entities") == 1
        await schema.execute(
            f"""mutation {{ runtime {{ demoEnergySites {{ create(entities: [{{name: "ignored"}}])
                {{ rtId }} }}
                demoEnergyEnergyMeters {{ update(entities: [{{rtId: "{METER_1}", item: {{voltage:
                    199}}}}]) {{ rtId }} }} }} }}""",
            context=context,
        )
        received = [await asyncio.wait_for(first, 5)]
        await schema.execute(
            f"""mutation {{ runtime {{ demoEnergyGasMeters {{ create(entities: [{{name: "G",
                serialNumber: "G1",
                state: ACTIVE, parent: [{{target: {{rtId: "{BUILDING}"}}}}]}}]) {{ rtId }} }} }}
                    }}""",
            context=context,
        )
        received.append(await asyncio.wait_for(stream.__anext__(), 5))
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        assert bus.subscriber_count(f"tenants.{demo.id}.entities") == 0
        return received

    update, insert = asyncio.run(scenario())
    assert not update.errors
    assert not insert.errors
    event = update.data["demoEnergyMeterEvents"]
    assert event["updateType"] == "UPDATE"
    assert event["rtId"] == METER_1
    assert event["entity"] == {
        "rtVersion": 2,
        "name": "Meter-001",
        "voltage": 199.0,
        "parent": {"rtId": BUILDING},
    }
    gas = insert.data["demoEnergyMeterEvents"]
    assert gas["updateType"] == "INSERT"
    assert gas["ckTypeId"] == "Demo.Energy/GasMeter"


def test_subscription_filters_by_rt_id_and_rejects_plain_execution(
    demo: Any, schemas: SchemaCache
) -> None:
    async def scenario() -> Any:
        schema = schemas.get(demo)
        context = schemas.context(demo)
        stream = await schema.subscribe(SUBSCRIBE, {"rtId": METER_1}, context=context)
        pending = asyncio.ensure_future(stream.__anext__())  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
        await schema.execute(
            f"""mutation {{ runtime {{ runtimeEntities {{ delete(entities: [{{rtId:
                "6560a1b2c3d4e5f607182933"}}]) }}
                demoEnergyEnergyMeters {{ update(entities: [{{rtId: "{METER_1}", item: {{name:
                    "renamed"}}}}]) {{ rtId }} }} }} }}""",
            context=context,
        )
        result = await asyncio.wait_for(pending, 5)
        await stream.aclose()  # type: ignore[union-attr]
        return result

    result = asyncio.run(scenario())
    assert result.data["demoEnergyMeterEvents"]["rtId"] == METER_1
    assert result.data["demoEnergyMeterEvents"]["entity"]["name"] == "renamed"
    plain = schemas.execute(demo, SUBSCRIBE)
    assert plain.errors
    assert plain.errors[0].extensions == {"code": "VALIDATION_FAILED"}
