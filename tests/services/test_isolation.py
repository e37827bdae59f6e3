"""Two tenants cannot see each other's data through any endpoint."""

from __future__ import annotations

import asyncio
import json

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


async def _events_seen_by_other(server: ServiceServer) -> list[str]:
    url = f"{server.ws_url}/tenants/other/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {OTHER_TOKEN}"}}
            )
        )
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "id": "s",
                    "type": "subscribe",
                    "payload": {"query": "subscription { demoEnergyEnergyMeterEvents { rtId } }"},
                }
            )
        )
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {ENERGY_TOKEN}"}
        ) as http:
            await http.post(
                "/tenants/energy/entities/apply",
                json={"updates": [{"rtId": METER_1, "attributes": {"voltage": 250.0}}]},
            )
        seen = []
        try:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                seen.append(message["payload"]["data"]["demoEnergyEnergyMeterEvents"]["rtId"])
        except TimeoutError:
            return seen


def test_subscriptions_do_not_cross_tenants(server: ServiceServer) -> None:
    assert asyncio.run(_events_seen_by_other(server)) == []
