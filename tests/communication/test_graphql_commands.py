"""The controller's GraphQL mutations (``mutation { communication { ... } }``) served by the Asset
Repository: they reach the controller through the bus, are authorized like its REST routes
(same refusal, same message) and their executions are recorded like any other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection

import workbench
from tests.communication.test_controller import TOKEN_A, _RunningAdapter, _setup, _wait
from workbench.errors import Unauthenticated
from workbench.identity.audit import AuditLog
from workbench.messaging.local import LocalMessageBus
from workbench.services import create_app as create_asset_repository
from workbench.services.auth import ALL_SCOPES, READ_SCOPE, Authenticator, Principal
from workbench.services.communication_controller.app import create_app as create_controller
from workbench.testing.http import ServiceServer

READER = "token-of-a-reader"
PRINCIPALS = {
    TOKEN_A: Principal("writer", frozenset({"plant-a"}), ALL_SCOPES),
    READER: Principal("reader", frozenset({"plant-a"}), frozenset({READ_SCOPE})),
}
EXECUTE = """mutation($id: ID!, $input: JSON) { communication {
  executePipeline(rtId: $id, input: $input) { command rtId adapterRtIds executionId status }
} }"""
DEPLOY = """mutation($id: ID!) { communication {
  deployAdapter(rtId: $id) { command adapterRtIds status }
} }"""


class Tokens(Authenticator):
    name = "test-tokens"

    def authenticate(self, connection: HTTPConnection) -> Principal:
        token = connection.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in PRINCIPALS:
            raise Unauthenticated("unknown test token")
        return PRINCIPALS[token]


@pytest.fixture
def services(tmp_path: Any) -> Iterator[dict[str, Any]]:
    with workbench.open(tmp_path / "wb") as wb:
        bus = LocalMessageBus()
        controller = create_controller(
            workbench=wb, auth=Tokens(), bus=bus, heartbeat_seconds=0.2, offline_after_seconds=1.0
        )
        repository = create_asset_repository(workbench=wb, auth=Tokens(), bus=bus)
        _setup(wb.tenants.create("plant-a"))
        with ServiceServer(controller) as cc, ServiceServer(repository) as ar:
            yield {"wb": wb, "controller": cc.url, "graphql": f"{ar.url}/tenants/plant-a/graphql"}


def _graphql(url: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    answer = httpx.post(
        url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert answer.status_code in (200, 403), answer.text
    body: dict[str, Any] = answer.json()
    return body


def _rest_execute(services: dict[str, Any], pipeline: str, token: str) -> httpx.Response:
    """The controller's REST execute route, for comparison."""
    return httpx.post(
        f"{services['controller']}/tenants/plant-a/pipelines/{pipeline}/execute",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )


def test_execute_and_deploy_through_graphql(services: dict[str, Any]) -> None:
    wb = services["wb"]
    tenant = wb.tenant("plant-a")
    adapter = tenant.entities.find("System.Communication/Adapter").items[0].rt_id
    pipeline = tenant.entities.find("System.Communication/Pipeline").items[0].rt_id
    running = _RunningAdapter(services["controller"], tenant, adapter, TOKEN_A)
    try:
        _wait(
            lambda: (
                tenant.entities.get(adapter).attributes.get("configurationState") == "Configured"
            ),
            "Configured",
        )
        sent = _graphql(services["graphql"], TOKEN_A, EXECUTE, id=pipeline, input={"q": 7})
        command = sent["data"]["communication"]["executePipeline"]
        assert command["status"] == "Sent"
        assert command["adapterRtIds"] == [adapter]

        def recorded() -> Any:
            found = tenant.entities.find(
                "System.Communication/PipelineExecution",
                where=[("executionId", "EQUALS", command["executionId"])],
            ).items
            return found[0] if found else None

        execution = _wait(recorded, "the PipelineExecution of the GraphQL execute")
        audited = [e for e in AuditLog.for_workbench(wb).query("plant-a") if e.actor == "writer"]
        assert [e.details["fields"] for e in audited] == [["communication.executePipeline"]]
        assert execution["status"] == "Completed"
        assert '"q": 7' in execution["outputData"]
        assert '"answer": 42' in execution["outputData"]
        assert running.runtime is not None
        version = running.runtime.configuration_version
        deployed = _graphql(services["graphql"], TOKEN_A, DEPLOY, id=adapter)
        assert deployed["data"]["communication"]["deployAdapter"]["adapterRtIds"] == [adapter]
        _wait(
            lambda: running.runtime is not None and running.runtime.configuration_version > version,
            "the configuration pushed again",
        )
    finally:
        running.stop()
    _wait(
        lambda: tenant.entities.get(adapter).attributes.get("communicationState") == "Offline",
        "Offline",
    )
    # the adapter is gone: GraphQL refuses with the REST route's Conflict
    rest = _rest_execute(services, pipeline, TOKEN_A)
    assert rest.status_code == 409
    refused = _graphql(services["graphql"], TOKEN_A, EXECUTE, id=pipeline)
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert refused["errors"][0]["message"] == rest.json()["message"]


def test_a_caller_without_the_role_is_refused_as_by_rest(services: dict[str, Any]) -> None:
    tenant = services["wb"].tenant("plant-a")
    pipeline = tenant.entities.find("System.Communication/Pipeline").items[0].rt_id
    rest = _rest_execute(services, pipeline, READER)
    assert rest.status_code == 403
    refused = _graphql(services["graphql"], READER, EXECUTE, id=pipeline)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["errors"][0]["message"] == rest.json()["message"]
    assert "assets:write" in refused["errors"][0]["message"]
    assert not tenant.entities.find("System.Communication/PipelineExecution").items
