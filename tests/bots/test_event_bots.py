"""Event-triggered bots end to end on a real RabbitMQ bus: entity writes through the Asset
Repository (its REST write path publishes the entity events) fire the bots whose schedule
(CK type + update kinds + field filter) they match, and nothing else; a bot scheduled
``after`` an event bot runs when it succeeded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bots.conftest import Platform, bot_notebook, promote, start_platform
from tests.conftest import BUILDING, METER_1
from workbench.testing.servers import rabbitmq_tenant
from workbench.testing.smtp import Mailbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

METER = "Demo.Energy/EnergyMeter"

#: the bot: records which entity fired it (``event`` is None in the validation run)
ON_FAULT = bot_notebook(
    [
        "rt_id = event['rtId'] if event else None\n"
        "wb.bot.output('rtId', rt_id)\n"
        "wb.bot.output('state', event['entity'].get('state') if event else None)\n"
        "print('fired by', rt_id)"
    ],
    parameters="event = None",
)


@pytest.fixture
def platform(tmp_path: Path, smtp: Mailbox) -> Iterator[Platform]:
    with rabbitmq_tenant("bots") as (amqp_url, tenant):
        yield from start_platform(
            tmp_path / "wb", tenant_id=tenant, bus_url=amqp_url, smtp_url=smtp.url
        )


def write(platform: Platform, **body: Any) -> list[dict[str, Any]]:
    """Creates/updates through the Asset Repository's REST write path (as the author)."""
    response = httpx.post(
        f"{platform.api_url}/tenants/{platform.tenant}/entities/apply",
        json=body,
        headers={"Authorization": f"Bearer {platform.author_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def meter(name: str, state: str) -> dict[str, Any]:
    """A new energy meter in hall A (the model wants its serial number and its parent)."""
    return {
        "ckTypeId": METER,
        "attributes": {"name": name, "serialNumber": f"EM-{name}", "state": state},
        "associations": [{"role": "System/ParentChild", "targetRtId": BUILDING}],
    }


def runs(platform: Platform, bot: str) -> list[dict[str, Any]]:
    with platform.http() as http:
        response = http.get(f"/tenants/{platform.tenant}/bots/{bot}/runs")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def final_runs(platform: Platform, bot: str, count: int) -> list[dict[str, Any]]:
    """The bot's runs, oldest first, once ``count`` of them are final."""

    def done() -> list[dict[str, Any]] | None:
        found = [r for r in runs(platform, bot) if r["status"] not in ("queued", "running")]
        return found[::-1] if len(found) >= count else None

    result: list[dict[str, Any]] = platform.wait_for(done, timeout=300)
    return result


def test_entity_events_from_the_asset_repository_fire_matching_bots(platform: Platform) -> None:
    promoted = promote(
        platform,
        "on-fault",
        ON_FAULT,
        on_event=f"{METER}:INSERT,UPDATE",
        event_filter=["state=Faulty"],  # as `--event-filter state=Faulty` gives it
        overlap="queue",  # a burst of events: every one runs (skip would drop the overlapping)
        timeout=300,
    )
    assert promoted["ref"] == "on-fault@1"
    assert runs(platform, "on-fault") == []  # the validation run is not a run of the bot
    downstream = bot_notebook(["wb.bot.output('ok', 1)"])
    promote(platform, "after-fault", downstream, after="on-fault", no_run=True)
    with platform.http() as http:
        listed = {b["name"]: b for b in http.get(f"/tenants/{platform.tenant}/bots").json()}
    assert listed["on-fault"]["schedule"] == (
        f"on {METER} events (INSERT/UPDATE) where {{'state': 'Faulty'}}"
    )
    events = platform.service.scheduler.events
    assert events is not None
    assert events.following[platform.tenant].wait(60)  # the group consumer is on the bus

    # fires: a new meter that is Faulty (INSERT)
    (faulty,) = write(platform, creates=[meter("M-9", "Faulty")])
    # does not fire: an entity of another type, a meter that is not Faulty
    write(platform, creates=[{"ckTypeId": "Demo.Energy/Site", "attributes": {"name": "Faulty"}}])
    write(platform, creates=[meter("M-10", "Active")])
    # does not fire: a change that leaves meter-001 Active (fails the filter)
    write(platform, updates=[{"rtId": METER_1, "attributes": {"voltage": 229.0}}])
    # fires: meter-001 turns Faulty (UPDATE)
    write(platform, updates=[{"rtId": METER_1, "attributes": {"state": "Faulty"}}])
    # fires: a change of the Faulty meter that keeps it Faulty (UPDATE); written last, so once
    # its run is recorded every event before it has been handled
    write(platform, updates=[{"rtId": faulty["rtId"], "attributes": {"name": "M-9b"}}])

    fired = final_runs(platform, "on-fault", 3)
    assert len(runs(platform, "on-fault")) == 3  # the events that do not match fired nothing
    assert [(r["status"], r["trigger"], r["outputs"].get("rtId")) for r in fired] == [
        ("succeeded", f"event:{METER}.INSERT", faulty["rtId"]),
        ("succeeded", f"event:{METER}.UPDATE", METER_1),
        ("succeeded", f"event:{METER}.UPDATE", faulty["rtId"]),
    ]
    # the run history keeps the triggering event as the run's parameter
    event = fired[1]["parameters"]["event"]
    assert {k: event[k] for k in ("rtId", "ckTypeId", "updateType")} == {
        "rtId": METER_1,
        "ckTypeId": METER,
        "updateType": "UPDATE",
    }
    assert event["entity"]["state"] == "Faulty"
    assert event["entity"]["voltage"] == 229.0  # the entity as written, not just the change
    assert fired[0]["parameters"]["event"]["entity"]["name"] == "M-9"
    assert fired[2]["parameters"]["event"]["entity"]["name"] == "M-9b"
    assert fired[2]["outputs"]["state"] == "Faulty"

    # the DAG: the bot scheduled after on-fault runs after on-fault's successful runs
    after = final_runs(platform, "after-fault", 1)
    assert [(r["status"], r["trigger"]) for r in after][:1] == [("succeeded", "after:on-fault")]
