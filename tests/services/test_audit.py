"""Every successful mutation through the Asset Repository lands in the tenant's audit log;
queries and failed requests do not; GraphQL operations need their operation scopes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection

import workbench
from tests.conftest import BUILDING
from tests.services.conftest import ALL_TOKEN, client_for, graphql
from workbench.identity.audit import AuditLog
from workbench.services import create_app
from workbench.services.auth import (
    READ_SCOPE,
    WRITE_SCOPE,
    Authenticator,
    Principal,
    StaticTokenAuthenticator,
)
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration

CREATE = """mutation ($serial: String!) { runtime { demoEnergyEnergyMeters {
  create(entities: [{name: "Audited", serialNumber: $serial, state: ACTIVE,
                     parent: [{target: {rtId: "%s"}, modOption: CREATE}]}]) { rtId } } } }"""


def _entries(wb: workbench.Workbench, tenant: str) -> list[Any]:
    return list(AuditLog.for_workbench(wb).query(tenant))


def test_mutations_are_audited_with_who_what_and_request_id(
    client: httpx.Client, service_wb: workbench.Workbench
) -> None:
    before = len(_entries(service_wb, "energy"))
    body = graphql(client, "energy", CREATE % BUILDING, serial="AU-1")
    assert "errors" not in body, body
    graphql(client, "energy", "{ runtime { rtDemoEnergyEnergyMeter { items { rtId } } } }")
    failed = graphql(client, "energy", CREATE % ("ab" * 12), serial="AU-2")
    assert failed.get("errors")
    entries = _entries(service_wb, "energy")[before:]
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry.action == "graphql.mutation"
    assert entry.details["fields"] == ["runtime.demoEnergyEnergyMeters"]
    assert entry.actor == StaticTokenAuthenticator(ALL_TOKEN)._tokens[0][1].subject
    assert entry.target == "/tenants/energy/graphql"
    assert entry.request_id
    assert _entries(service_wb, "other") == []


def test_rest_writes_are_audited(client: httpx.Client, service_wb: workbench.Workbench) -> None:
    before = len(_entries(service_wb, "energy"))
    rows = (
        b'{"rtId": "6560a1b2c3d4e5f607182932", "timestamp": "2026-01-01T00:00:00Z", "voltage": 1}'
    )
    response = client.post(
        "/tenants/energy/streams/Demo.Energy/EnergyMeter",
        content=rows + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code < 300, response.text
    client.get("/tenants/energy/streams/Demo.Energy/EnergyMeter")
    entries = _entries(service_wb, "energy")[before:]
    assert [e.action for e in entries] == ["POST /streams/{ckTypeId:path}"]
    assert entries[0].target == "/tenants/energy/streams/Demo.Energy/EnergyMeter"


class _WriterWithoutModelling(Authenticator):
    """May write entities but holds neither ck-import nor streams-write."""

    def authenticate(self, connection: HTTPConnection) -> Principal:
        return Principal("writer", None, frozenset({READ_SCOPE, WRITE_SCOPE}))


@pytest.fixture
def limited(service_wb: workbench.Workbench) -> Iterator[httpx.Client]:
    app = create_app(workbench=service_wb, auth=_WriterWithoutModelling())
    with ServiceServer(app) as running, client_for(running, "x") as http:
        yield http


def test_graphql_ck_import_and_stream_writes_need_their_scopes(limited: httpx.Client) -> None:
    ck = limited.post(
        "/tenants/energy/graphql",
        json={"query": 'mutation { constructionKit { importLibrary(files: ["x"]) { modelId } } }'},
    )
    assert ck.status_code == 403, ck.text
    assert "assets:ck-import" in ck.text
    stream = limited.post(
        "/tenants/energy/graphql",
        json={
            "query": "mutation { streamData { demoEnergyEnergyMeter { write(points: [{rtId: "
            '"6560a1b2c3d4e5f607182932", timeStamp: "2026-01-01T00:00:00Z", voltage: 1}]) } } }'
        },
    )
    assert stream.status_code == 403, stream.text
    assert "assets:streams-write" in stream.text
    ok = limited.post(
        "/tenants/energy/graphql",
        json={"query": CREATE % BUILDING, "variables": {"serial": "AU-9"}},
    )
    assert ok.status_code == 200, ok.text
    assert "errors" not in ok.json(), ok.text


def test_static_tokens_hold_every_operation_scope() -> None:
    principal = StaticTokenAuthenticator(ALL_TOKEN)._tokens[0][1]
    assert {"assets:ck-import", "assets:streams-write"} <= principal.scopes
