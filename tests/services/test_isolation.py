"""Two tenants cannot see each other's data through any endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import METER_1
from tests.services.conftest import ENERGY_TOKEN, OTHER_METER, OTHER_TOKEN, client_for, graphql
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration

ENDPOINTS = [
    ("GET", "/ck/libraries", None),
    ("GET", "/ck/stamp", None),
    ("GET", "/ck/libraries/Demo.Energy", None),
    ("POST", "/ck/libraries", b"modelId: X-1.0.0"),
    ("POST", "/runtime/import", b"entities: []"),
    ("GET", "/runtime/export", None),
    ("GET", "/streams/Demo.Energy/EnergyMeter", None),
    ("POST", "/streams/Demo.Energy/EnergyMeter", b"rtId,timestamp\n"),
    (
        "GET",
        "/streams/Demo.Energy/EnergyMeter/aggregate?from=2026-01-01T00:00:00Z"
        "&to=2026-01-02T00:00:00Z&interval=1h",
        None,
    ),
    ("POST", "/entities/find", b'{"ckTypeId": "Demo.Energy/EnergyMeter"}'),
    ("GET", f"/entities/{OTHER_METER}", None),
    ("POST", "/entities/delete", b'{"rtIds": ["' + OTHER_METER.encode() + b'"]}'),
    ("POST", "/graphql", b'{"query": "{ __typename }"}'),
    ("GET", "/graphql?query=%7B__typename%7D", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_token_for_energy_cannot_touch_other(
    server: ServiceServer, method: str, path: str, body: bytes | None
) -> None:
    with client_for(server, ENERGY_TOKEN) as http:
        response = http.request(
            method,
            f"/tenants/other{path}",
            content=body,
            headers={"Content-Type": "application/json"} if body else {},
        )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "FORBIDDEN"
    assert "Other" not in response.text


def test_each_tenant_sees_only_its_own_entities(server: ServiceServer) -> None:
    query = "{ runtime { runtimeEntities(first: 100) { items { rtId } } } }"
    with client_for(server, ENERGY_TOKEN) as energy, client_for(server, OTHER_TOKEN) as other:
        energy_ids = {
            i["rtId"]
            for i in graphql(energy, "energy", query)["data"]["runtime"]["runtimeEntities"]["items"]
        }
        other_ids = {
            i["rtId"]
            for i in graphql(other, "other", query)["data"]["runtime"]["runtimeEntities"]["items"]
        }
        assert METER_1 in energy_ids
        assert OTHER_METER not in energy_ids
        assert OTHER_METER in other_ids
        assert METER_1 not in other_ids
        # an rtId of the other tenant is simply not there
        assert energy.get(f"/tenants/energy/entities/{OTHER_METER}").status_code == 404
        assert other.get(f"/tenants/other/entities/{METER_1}").status_code == 404
        assert OTHER_METER not in energy.get("/tenants/energy/runtime/export").text
        assert METER_1 not in other.get("/tenants/other/runtime/export").text
        # stream points written to one tenant are not readable from the other
        csv = f"rtId,timestamp,voltage\n{METER_1},2026-01-01T00:00:00Z,230.0\n"
        wrote = energy.post(
            "/tenants/energy/streams/Demo.Energy/EnergyMeter",
            content=csv,
            headers={"Content-Type": "text/csv"},
        )
        assert wrote.status_code == 200, wrote.text
        assert (
            METER_1
            not in other.get(
                "/tenants/other/streams/Demo.Energy/EnergyMeter", params={"format": "csv"}
            ).text
        )
        refused = other.post(
            "/tenants/other/streams/Demo.Energy/EnergyMeter",
            content=csv,
            headers={"Content-Type": "text/csv"},
        )
        assert refused.status_code == 400  # METER_1 is no entity of tenant other


SUBSCRIPTION = "subscription { demoEnergyEnergyMeterEvents { rtId } }"


async def _subscribe(server: ServiceServer, tenant: str, token: str) -> Any:
    url = f"{server.ws_url}/tenants/{tenant}/graphql"
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    subscribe = {"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
    await ws.send(json.dumps(subscribe))
    return ws


async def _touch(
    server: ServiceServer, tenant: str, token: str, rt_id: str, voltage: float
) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        response = await http.post(
            f"/tenants/{tenant}/entities/apply",
            json={"updates": [{"rtId": rt_id, "attributes": {"voltage": voltage}}]},
        )
    assert response.status_code == 200, response.text


async def _next_rt_id(ws: Any, timeout: float = 0.5) -> str:
    message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert message["type"] == "next", message
    return str(message["payload"]["data"]["demoEnergyEnergyMeterEvents"]["rtId"])


async def _live(ws: Any, server: ServiceServer, tenant: str, token: str, rt_id: str) -> None:
    """Wait until the subscription delivers (subscribing completes asynchronously on the
    server): touch the tenant's own entity until its event arrives. The positive control."""
    for attempt in range(60):
        await _touch(server, tenant, token, rt_id, 200.0 + attempt)
        try:
            assert (await _next_rt_id(ws)).lower() == rt_id.lower()
            return
        except TimeoutError:
            continue
    raise AssertionError(f"the subscription of {tenant} never delivered")


async def _events_seen(server: ServiceServer) -> tuple[list[str], list[str]]:
    """What each tenant's subscriber sees of a change in energy, fenced by a change in other."""
    energy = await _subscribe(server, "energy", ENERGY_TOKEN)
    other = await _subscribe(server, "other", OTHER_TOKEN)
    try:
        await _live(energy, server, "energy", ENERGY_TOKEN, METER_1)
        await _live(other, server, "other", OTHER_TOKEN, OTHER_METER)
        await _touch(server, "energy", ENERGY_TOKEN, METER_1, 250.0)
        seen_by_energy = [await _next_rt_id(energy, 10)]  # the change arrives where it belongs
        # the fence: a change in other after the one in energy; other's subscriber reads its
        # events in order, so anything of energy it were given would come before the fence
        await _touch(server, "other", OTHER_TOKEN, OTHER_METER, 251.0)
        seen_by_other = []
        while True:
            rt_id = await _next_rt_id(other, 10)
            if rt_id.lower() == OTHER_METER.lower():
                break
            seen_by_other.append(rt_id)
        return seen_by_energy, seen_by_other
    finally:
        await energy.close()
        await other.close()


def test_subscriptions_do_not_cross_tenants(server: ServiceServer) -> None:
    seen_by_energy, seen_by_other = asyncio.run(_events_seen(server))
    assert [r.lower() for r in seen_by_energy] == [METER_1.lower()]  # the positive twin
    assert seen_by_other == []
