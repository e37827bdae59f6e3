"""Stream rollups and retention, and service hooks against a local receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.bots.builtin.conftest import Receiver
from workbench.bots.builtin.rollups import rollup_streams
from workbench.bots.builtin.service_hooks import call_service_hooks, hook_url
from workbench.errors import ValidationError
from workbench.testing.http import ServiceServer

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_rollup_replaces_old_points_by_buckets_and_expires_the_oldest(tenant: Any) -> None:
    machine = tenant.entities.create("BotJobs/Machine", {"name": "m"}).rt_id
    streams = tenant.streams("BotJobs/Machine")
    start = NOW - timedelta(days=10)  # 10 days ago: 3 hours of 10-minute points
    old = [
        {"rtId": machine, "timestamp": start + timedelta(minutes=10 * i), "power": float(i)}
        for i in range(18)
    ]
    recent = [{"rtId": machine, "timestamp": NOW - timedelta(hours=1), "power": 99.0}]
    ancient = [{"rtId": machine, "timestamp": NOW - timedelta(days=400), "power": 1.0}]
    streams.write(old + recent + ancient)
    report = rollup_streams(
        tenant, "BotJobs/Machine", interval="1h", rollup_after="7d", retain="365d", now=NOW
    )
    assert (report.raw_points, report.rollup_points, report.expired_points) == (19, 4, 1)
    frame = streams.read().to_pandas()
    rolled = frame[frame["timeStamp"] < NOW - timedelta(days=7)]
    assert list(rolled["power"]) == [2.5, 8.5, 14.5]  # hourly averages of 0..5, 6..11, 12..17
    assert [t.minute for t in rolled["timeStamp"]] == [0, 0, 0]
    assert list(frame[frame["timeStamp"] >= NOW - timedelta(days=7)]["power"]) == [99.0]
    again = rollup_streams(tenant, "BotJobs/Machine", interval="1h", rollup_after="7d", now=NOW)
    assert again.rollup_points == 3
    assert streams.read().to_pandas()["power"].tolist() == frame["power"].tolist()


def test_rollup_keeps_the_last_value_of_attributes_the_function_does_not_apply_to(
    tenant: Any,
) -> None:
    meter = tenant.entities.find("Demo.Energy/EnergyMeter").items[0].rt_id
    streams = tenant.streams("Demo.Energy/EnergyMeter")
    start = NOW - timedelta(days=10)
    streams.write(
        [
            {
                "rtId": meter,
                "timestamp": start + timedelta(minutes=20 * i),
                "voltage": 230.0 + i,
                "state": ["Active", "Faulty"][i % 2],
            }
            for i in range(3)
        ]
    )
    rollup_streams(tenant, "Demo.Energy/EnergyMeter", interval="1h", now=NOW)
    [point] = streams.read().to_pandas().to_dict("records")
    assert (point["voltage"], point["state"]) == (231.0, "Active")


def test_rollup_refuses_a_function_that_is_not_a_value(tenant: Any) -> None:
    with pytest.raises(ValidationError, match="rollup function 'count'"):
        rollup_streams(tenant, "BotJobs/Machine", function="count")


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    server = ServiceServer(app).start()
    try:
        yield app, server.url
    finally:
        server.stop()


def test_service_hooks_post_the_matching_rt_ids(tenant: Any, receiver: Any) -> None:
    app, url = receiver
    faulty = tenant.entities.find("Demo.Energy/EnergyMeter", where=["state EQUALS Faulty"])
    create = tenant.entities.create
    hook = create(
        "System.Bot/ServiceHook",
        {
            "name": "faulty meters",
            "queryCkTypeId": "Demo.Energy/EnergyMeter",
            "fieldFilter": '["state EQUALS Faulty"]',
            "baseUri": url + "/hooks/",
            "action": "/meters",
            "apiKey": "k-123",
        },
    ).rt_id
    create(
        "System.Bot/ServiceHook",
        {"name": "broken", "queryCkTypeId": "BotJobs/Line", "baseUri": url + "/fail"},
    )
    create(
        "System.Bot/ServiceHook",
        {"name": "off", "enabled": False, "queryCkTypeId": "BotJobs/Line", "baseUri": url},
    )
    calls = {c.name: c for c in call_service_hooks(tenant)}
    assert sorted(calls) == ["broken", "faulty meters"]
    assert calls["faulty meters"].ok
    assert not calls["broken"].ok
    _path, headers, body = next(c for c in app.calls if c[0] == "/hooks/meters")
    assert headers["x-api-key"] == "k-123"
    assert body["rtIds"] == [e.rt_id for e in faulty.items]
    assert body["count"] == 1
    assert body["tenant"] == "jobs"
    assert body["hook"] == "faulty meters"
    stored = tenant.entities.get(hook).attributes
    assert stored["lastStatus"] == "200 OK, 1 entities"
    assert stored["lastRunAt"]


def test_hook_url_needs_http() -> None:
    assert hook_url("http://h/a/", "/b") == "http://h/a/b"
    with pytest.raises(ValidationError, match="BaseUri 'ftp://h' is not an http"):
        hook_url("ftp://h", None)


def test_on_an_event_a_hook_gets_that_entity_only_when_it_matches(
    tenant: Any, receiver: Any
) -> None:
    app, url = receiver
    meters = {
        e.attributes["state"]: e.rt_id
        for e in tenant.entities.find("Demo.Energy/EnergyMeter").items
    }
    tenant.entities.create(
        "System.Bot/ServiceHook",
        {
            "name": "faulty",
            "queryCkTypeId": "Demo.Energy/EnergyMeter",
            "fieldFilter": '["state EQUALS Faulty"]',
            "baseUri": url,
        },
    )
    tenant.entities.create(
        "System.Bot/ServiceHook",
        {"name": "lines", "queryCkTypeId": "BotJobs/Line", "baseUri": url},
    )
    event = {"ckTypeId": "Demo.Energy/EnergyMeter", "updateType": "UPDATE"}
    assert call_service_hooks(tenant, event={**event, "rtId": meters["Active"]}) == []
    [call] = call_service_hooks(tenant, event={**event, "rtId": meters["Faulty"]})
    assert (call.name, call.entities) == ("faulty", 1)
    [(_, _, body)] = app.calls
    assert (body["rtIds"], body["event"]) == ([meters["Faulty"]], "UPDATE")
