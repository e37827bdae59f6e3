"""GraphQL over HTTP and WebSocket against a real server: the GRAPHQL_API.md query, errors,
schema hot reload after a CK import in another process, subscriptions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

import workbench
from tests.conftest import METER_1, METER_2
from tests.services.conftest import ALL_TOKEN, ENERGY_TOKEN, client_for, graphql
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, tzinfo=UTC)

# The query of GRAPHQL_API.md as written there, with real ids, cursors and times filled in.
DESIGN_QUERY_TEMPLATE = """
query ($after: String, $tsAfter: String) {
  runtime {
    rtDemoEnergyEnergyMeter(
      first: 50, after: $after,
      rtIds: ["__M1__", "__M2__"],
      fieldFilter: [{attributePath: "state", operator: EQUALS, comparisonValue: "Active"}],
      searchFilter: {searchTerm: "meter", attributePaths: ["name", "serialNumber"]},
      sortOrder: [{attributePath: "serialNumber", sortOrder: ASCENDING}]
    ) {
      totalCount
      pageInfo { hasNextPage endCursor }
      items {
        rtId ckTypeId rtWellKnownName rtCreationDateTime rtChangedDateTime rtVersion
        name serialNumber state voltage
        phaseL1 { voltage current }
        parent { ... on DemoEnergyBuilding { name } }
        supplies(first: 10) { items { rtId name } }
      }
      edges { cursor node { rtId } }
    }
    runtimeEntities(ckTypeId: "Demo.Energy/Meter", first: 100) { items { rtId ckTypeId } }
  }
  constructionKit {
    models { modelId } types(ckModelId: "Demo.Energy") { ckTypeId isAbstract }
  }
  streamData {
    tsDemoEnergyEnergyMeter(rtIds: ["__M1__"], from: "2026-01-01T00:00:00Z",
                            to: "2026-01-02T00:00:00Z", first: 1000, after: $tsAfter) {
      pageInfo { hasNextPage endCursor }
      items { rtId timeStamp voltage current }
    }
    tsDemoEnergyEnergyMeterAggregate(rtIds: ["__M1__"], from: "2026-01-01T00:00:00Z",
                                     to: "2026-01-02T00:00:00Z", interval: "15m",
                                     functions: [AVG, MIN, MAX]) {
      items { rtId bucket voltageAvg voltageMin voltageMax }
    }
    tsDemoEnergyEnergyMeterDownsample(rtIds: ["__M1__"], from: "2026-01-01T00:00:00Z",
                                      to: "2026-01-02T00:00:00Z", limit: 2000) {
      items { rtId bucket voltage }
    }
  }
}
"""
DESIGN_QUERY = DESIGN_QUERY_TEMPLATE.replace("__M1__", METER_1).replace("__M2__", METER_2)


def _write_points(wb: workbench.Workbench) -> None:
    rows = [
        {
            "rtId": METER_1,
            "timestamp": START + timedelta(minutes=i),
            "voltage": 230.0 + i,
            "current": 1.0,
        }
        for i in range(30)
    ]
    wb.tenant("energy").streams("Demo.Energy/EnergyMeter").write(rows)


def test_the_design_query_works_as_written(
    service_wb: workbench.Workbench, client: httpx.Client
) -> None:
    _write_points(service_wb)
    probe = graphql(client, "energy", '{ __type(name: "StreamDataQuery") { fields { name } } }')
    fields = {f["name"] for f in probe["data"]["__type"]["fields"]}
    if "tsDemoEnergyEnergyMeter" not in fields:
        pytest.skip("the graphql package does not generate streamData queries yet")
    body = graphql(client, "energy", DESIGN_QUERY)
    assert "errors" not in body, body.get("errors")
    data = body["data"]
    meters = data["runtime"]["rtDemoEnergyEnergyMeter"]
    assert meters["totalCount"] == 1
    item = meters["items"][0]
    assert item["rtId"] == METER_1
    assert item["state"] == "ACTIVE"
    assert item["phaseL1"] == {"voltage": 230.9, "current": 12.4}
    assert item["parent"] == {"name": "Hall A"}
    assert meters["edges"][0]["node"]["rtId"] == METER_1
    assert {e["rtId"] for e in data["runtime"]["runtimeEntities"]["items"]} == {METER_1, METER_2}
    assert {"modelId": "Demo.Energy-1.0.0"} in data["constructionKit"]["models"]
    points = data["streamData"]["tsDemoEnergyEnergyMeter"]["items"]
    assert len(points) == 30
    aggregates = data["streamData"]["tsDemoEnergyEnergyMeterAggregate"]["items"]
    assert [a["voltageMax"] for a in aggregates] == [244.0, 259.0]
    assert data["streamData"]["tsDemoEnergyEnergyMeterDownsample"]["items"]


def test_the_design_query_runtime_and_ck_parts(client: httpx.Client) -> None:
    runtime_part = DESIGN_QUERY[: DESIGN_QUERY.index("  streamData {")] + "}\n"
    runtime_part = runtime_part.replace(", $tsAfter: String", "")
    body = graphql(client, "energy", runtime_part)
    assert "errors" not in body, body.get("errors")
    meters = body["data"]["runtime"]["rtDemoEnergyEnergyMeter"]
    assert meters["totalCount"] == 1
    assert meters["items"][0]["parent"] == {"name": "Hall A"}
    assert meters["items"][0]["phaseL1"] == {"voltage": 230.9, "current": 12.4}
    assert body["data"]["constructionKit"]["types"]


def test_get_queries_and_graphql_bodies(client: httpx.Client) -> None:
    query = "{ runtime { rtDemoEnergySite { items { name } } } }"
    get = client.get("/tenants/energy/graphql", params={"query": query})
    assert get.json() == {
        "data": {"runtime": {"rtDemoEnergySite": {"items": [{"name": "Linz Plant"}]}}}
    }
    raw = client.post(
        "/tenants/energy/graphql", content=query, headers={"Content-Type": "application/graphql"}
    )
    assert raw.json() == get.json()
    delete = (
        f'mutation {{ runtime {{ runtimeEntities {{ delete(entities: [{{rtId: "{METER_2}"}}], '
        "options: ARCHIVE) } } }"
    )
    mutation = client.get("/tenants/energy/graphql", params={"query": delete})
    assert mutation.status_code == 405
    browser = client.get(
        "/tenants/energy/graphql", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert browser.status_code == 307
    assert browser.headers["location"].endswith("/tenants/energy/graphql/playground")


def test_graphql_errors_carry_codes_and_no_traces(client: httpx.Client) -> None:
    unknown_field = graphql(client, "energy", "{ runtime { nope } }")
    assert unknown_field["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    not_json = client.post(
        "/tenants/energy/graphql", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    no_query = client.post("/tenants/energy/graphql", json={"variables": {}})
    assert no_query.status_code == 400
    stale = graphql(
        client,
        "energy",
        f'mutation {{ runtime {{ demoEnergyEnergyMeters {{ update(entities: [{{rtId: "{METER_1}", '
        "rtVersion: 99, item: {voltage: 1.0}}]) { rtId } } } }",
    )
    assert stale["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert "Traceback" not in json.dumps(stale)


def test_schema_reloads_after_ck_import_in_another_process(
    data_dir: Path, server: ServiceServer, client: httpx.Client, tmp_path: Path
) -> None:
    query = "{ runtime { rtDemoExtraTank { items { name capacity } } } }"
    before = graphql(client, "energy", query)
    assert before["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    library = tmp_path / "extra.yaml"
    library.write_text(
        "modelId: Demo.Extra-1.0.0\n"
        "dependencies:\n  - System-[2.0,3.0)\n"
        "attributes:\n  - {id: Capacity, valueType: Double}\n"
        "types:\n  - typeId: Tank\n    derivedFromCkTypeId: System/Entity\n"
        "    attributes:\n      - {id: System/Name, name: Name}\n"
        "      - {id: Demo.Extra/Capacity, name: Capacity}\n",
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "workbench",
        "--data-dir",
        str(data_dir),
        "ck",
        "import",
        "--tenant",
        "energy",
        str(library),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    after = graphql(client, "energy", query)
    assert after == {"data": {"runtime": {"rtDemoExtraTank": {"items": []}}}}
    # the other tenant's schema is untouched
    other = graphql(client, "other", query)
    assert other["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"


async def _subscribe_and_mutate(server: ServiceServer, token: str) -> list[dict[str, Any]]:
    url = f"{server.ws_url}/tenants/energy/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription { demoEnergyEnergyMeterEvents(updateTypes: "
                        "[UPDATE]) { updateType rtId entity { ... on DemoEnergyEnergyMeter "
                        "{ voltage } } } }"
                    },
                }
            )
        )
        await asyncio.sleep(0.3)  # the subscription is registered on the bus
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            for voltage in (240.0, 241.0):
                response = await http.post(
                    "/tenants/energy/graphql",
                    json={
                        "query": (
                            "mutation { runtime { demoEnergyEnergyMeters { update(entities: "
                            f'[{{rtId: "{METER_1}", item: {{voltage: {voltage}}}}}]) '
                            "{ rtId } } } }"
                        )
                    },
                )
                assert "errors" not in response.json(), response.json()
            # a REST write is an event too
            response = await http.post(
                "/tenants/energy/entities/apply",
                json={"updates": [{"rtId": METER_1, "attributes": {"voltage": 242.0}}]},
            )
            assert response.status_code == 200
        received = []
        for _ in range(3):
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "next", message
            received.append(message["payload"]["data"]["demoEnergyEnergyMeterEvents"])
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
        return received


def test_subscriptions_receive_events_over_graphql_transport_ws(server: ServiceServer) -> None:
    received = asyncio.run(_subscribe_and_mutate(server, ALL_TOKEN))
    assert [r["entity"]["voltage"] for r in received] == [240.0, 241.0, 242.0]
    assert {r["updateType"] for r in received} == {"UPDATE"}
    assert {r["rtId"] for r in received} == {METER_1}


async def _ws_close_code(
    server: ServiceServer, tenant: str, token: str | None, protocol: str = "graphql-transport-ws"
) -> int | None:
    url = f"{server.ws_url}/tenants/{tenant}/graphql"
    try:
        async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            payload = {"Authorization": f"Bearer {token}"} if token else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            await asyncio.wait_for(ws.recv(), 10)
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


def test_websocket_auth_and_protocol_errors(server: ServiceServer) -> None:
    assert asyncio.run(_ws_close_code(server, "energy", None)) == 4401
    assert asyncio.run(_ws_close_code(server, "other", ENERGY_TOKEN)) == 4403
    assert asyncio.run(_ws_close_code(server, "ghost", ALL_TOKEN)) == 4404


def test_playground_page_is_self_contained(server: ServiceServer) -> None:
    with client_for(server, None) as anonymous:
        page = anonymous.get("/tenants/energy/graphql/playground")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        html = page.text
        assert "http://" not in html
        assert "https://" not in html
        assert "//cdn" not in html
        for asset in (
            "graphiql.min.js",
            "graphiql.min.css",
            "react.production.min.js",
            "react-dom.production.min.js",
            "playground.js",
        ):
            assert f"/static/{asset}" in html
            assert anonymous.get(f"/static/{asset}").status_code == 200
        assert 'data-endpoint="/tenants/energy/graphql"' in html
