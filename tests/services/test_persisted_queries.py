"""Automatic Persisted Queries (Apollo's protocol) and the per-tenant allow-list, over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import workbench
from tests.services.conftest import ALL_TOKEN, client_for
from workbench.graphql.persisted import (
    PERSISTED_QUERIES_KEY,
    forget_mode,
    persisted_queries,
    query_hash,
)
from workbench.testing.http import ServiceServer

QUERY = "{ runtime { rtDemoEnergyEnergyMeter(first: 1) { totalCount } } }"
OTHER = "{ runtime { rtDemoEnergySite { totalCount } } }"


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def post(http: httpx.Client, tenant: str, **body: Any) -> httpx.Response:
    return http.post(f"/tenants/{tenant}/graphql", json=body)


def allow_list_mode(wb: workbench.Workbench, tenant: str, mode: str | None) -> None:
    wb.registry.set_config(tenant, PERSISTED_QUERIES_KEY, mode)
    forget_mode(tenant)


@pytest.fixture
def http(server: ServiceServer) -> Any:
    with client_for(server, ALL_TOKEN) as client:
        yield client


def test_unknown_hash_then_registration_then_hash_only(http: httpx.Client) -> None:
    digest = query_hash(QUERY)
    first = post(http, "energy", extensions=persisted(digest))
    assert first.status_code == 200  # Apollo clients retry with the document on this answer
    assert first.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert first.headers["cache-control"] == "private, no-cache, must-revalidate"
    registered = post(http, "energy", query=QUERY, extensions=persisted(digest))
    assert registered.json() == {
        "data": {"runtime": {"rtDemoEnergyEnergyMeter": {"totalCount": 2}}}
    }
    by_hash = post(http, "energy", extensions=persisted(digest))
    assert by_hash.json() == registered.json()
    over_get = http.get(
        "/tenants/energy/graphql", params={"extensions": json.dumps(persisted(digest))}
    )
    assert over_get.json() == registered.json()
    # registrations are per tenant: another tenant does not know the hash
    assert post(http, "other", extensions=persisted(digest)).json()["errors"][0]["message"] == (
        "PersistedQueryNotFound"
    )


def test_a_hash_that_is_not_the_documents_is_refused(http: httpx.Client) -> None:
    response = post(http, "energy", query=QUERY, extensions=persisted(query_hash(OTHER)))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert f"its SHA-256 is {query_hash(QUERY)}" in error["message"]
    assert post(http, "energy", extensions=persisted("abc")).status_code == 400


def test_allow_list_mode_runs_only_listed_documents(
    http: httpx.Client, service_wb: workbench.Workbench
) -> None:
    digest = persisted_queries(service_wb.tenant("energy")).add(QUERY, name="meterCount")
    allow_list_mode(service_wb, "energy", "allowList")
    expected = {"data": {"runtime": {"rtDemoEnergyEnergyMeter": {"totalCount": 2}}}}
    assert post(http, "energy", extensions=persisted(digest)).json() == expected
    assert post(http, "energy", query=QUERY).json() == expected  # listed, sent in full
    for refused in (
        post(http, "energy", query=OTHER),
        post(http, "energy", query=OTHER, extensions=persisted(query_hash(OTHER))),
        post(http, "energy", extensions=persisted(query_hash(OTHER))),
    ):
        assert refused.status_code == 400
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        assert "workbench graphql persist" in error["message"]
    # no registration was taken: the hash is still unknown
    assert post(http, "energy", extensions=persisted(query_hash(OTHER))).status_code == 400
    # the mode is the tenant's: the other tenant still accepts any document
    assert "data" in post(http, "other", query=OTHER).json()
    allow_list_mode(service_wb, "energy", None)
    assert "data" in post(http, "energy", query=OTHER).json()


def test_the_allow_list_is_kept_in_the_tenant_store(service_wb: workbench.Workbench) -> None:
    tenant = service_wb.tenant("energy")
    queries = persisted_queries(tenant)
    digest = queries.add(QUERY, name="meterCount")
    assert [(r["sha256Hash"], r["name"], r["query"]) for r in queries.list()] == [
        (digest, "meterCount", QUERY)
    ]
    from workbench.graphql.persisted import PersistedQueries

    elsewhere = PersistedQueries(tenant.entity_store)  # another process sees the same list
    assert elsewhere.listed(digest) == QUERY
    assert queries.remove(digest) is True
    assert PersistedQueries(tenant.entity_store).listed(digest) is None
    assert queries.remove(digest) is False


def test_an_unknown_mode_is_a_clear_error(
    http: httpx.Client, service_wb: workbench.Workbench
) -> None:
    allow_list_mode(service_wb, "energy", "everything")
    response = post(http, "energy", query=QUERY)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "tenant 'energy' has graphql.persistedQueries='everything'; use one of: automatic, "
        "allowList"
    )


def test_cli_persists_lists_sets_the_mode_and_removes(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from workbench.cli import cli

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "wb"), "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    run("tenant", "create", "plant")
    document = tmp_path / "meterCount.graphql"
    document.write_text(QUERY)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"operations": [{"name": "sites", "body": OTHER}]}))
    added = run("graphql", "persist", "--tenant", "plant", str(document), str(manifest))
    assert added == [
        {"sha256Hash": query_hash(QUERY), "name": "meterCount"},
        {"sha256Hash": query_hash(OTHER), "name": "sites"},
    ]
    assert run("graphql", "mode", "--tenant", "plant", "allowList")["mode"] == "allowList"
    listed = run("graphql", "persisted", "--tenant", "plant")
    assert listed["mode"] == "allowList"
    assert [row["name"] for row in listed["queries"]] == ["meterCount", "sites"]
    run("graphql", "unpersist", "--tenant", "plant", query_hash(OTHER))
    assert [r["name"] for r in run("graphql", "persisted", "--tenant", "plant")["queries"]] == [
        "meterCount"
    ]


async def _ws_first_message(server: ServiceServer, query: str) -> dict[str, Any]:
    import websockets

    url = f"{server.ws_url}/tenants/energy/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {ALL_TOKEN}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        return message


def test_allow_list_mode_holds_over_websocket_too(
    server: ServiceServer, service_wb: workbench.Workbench
) -> None:
    persisted_queries(service_wb.tenant("energy")).add(QUERY)
    allow_list_mode(service_wb, "energy", "allowList")
    refused = asyncio.run(_ws_first_message(server, OTHER))
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    listed = asyncio.run(_ws_first_message(server, QUERY))
    assert listed["type"] == "next"
    assert listed["payload"]["data"] == {"runtime": {"rtDemoEnergyEnergyMeter": {"totalCount": 2}}}
