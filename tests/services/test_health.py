"""Health, readiness, metrics, OpenAPI, request ids and the error shape, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.services.conftest import client_for
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration


def test_healthz_and_readyz_answer_without_a_token(server: ServiceServer) -> None:
    with client_for(server, None) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["systemStore"]["tenants"] == 2


def test_metrics_count_requests_by_route_template(client: httpx.Client) -> None:
    client.get("/tenants/energy/ck/stamp")
    client.get("/tenants/other/ck/stamp")
    client.get("/no/such/route")
    text = client.get("/metrics").text
    assert 'route="/tenants/{tenantId}/ck/stamp",service="asset-repository",status="200"} 2.0' in (
        text
    )
    assert "workbench_http_request_duration_seconds_bucket" in text
    assert 'route="<unmatched>"' in text
    # concrete tenant ids never become labels
    assert "/tenants/energy/" not in text


def test_openapi_lists_the_rest_and_graphql_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/tenants/{tenantId}/graphql",
        "/tenants/{tenantId}/graphql/playground",
        "/tenants/{tenantId}/streams/{ckTypeId}",
        "/tenants/{tenantId}/ck/libraries",
        "/tenants/{tenantId}/ck/libraries/{modelId}",
        "/tenants/{tenantId}/runtime/import",
        "/tenants/{tenantId}/runtime/export",
    ):
        assert path in paths, path


def test_every_response_carries_a_request_id(client: httpx.Client) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    # a header that could forge log lines is replaced, not echoed
    forged = client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert forged.headers["x-request-id"] != "a b\tc"


def test_errors_have_one_json_shape_with_the_request_id(client: httpx.Client) -> None:
    missing = client.get("/tenants/energy/entities/6560a1b2c3d4e5f6071829ff")
    assert missing.status_code == 404
    body = missing.json()
    assert body["code"] == "NOT_FOUND"
    assert "6560a1b2c3d4e5f6071829ff" in body["message"]
    assert body["requestId"] == missing.headers["x-request-id"]
    invalid = client.get("/tenants/energy/entities/not-an-id")
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "VALIDATION_FAILED"
    unknown_route = client.get("/nothing-here")
    assert unknown_route.status_code == 404
    assert unknown_route.json()["code"] == "NOT_FOUND"


def test_unknown_tenant_is_404(client: httpx.Client) -> None:
    for path in ("/tenants/nope/ck/libraries", "/tenants/nope/runtime/export"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["message"]
    assert client.get("/tenants/system/ck/libraries").status_code == 404
    assert client.get("/tenants/NOT_VALID/ck/libraries").status_code == 404


def test_internal_errors_do_not_leak(server: ServiceServer, client: httpx.Client) -> None:
    service = server.server.config.app.state.service  # type: ignore[union-attr]

    def explode(*_args: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    original = service.workbench.tenant
    service.workbench.tenant = explode
    try:
        response = client.get("/tenants/energy/ck/libraries")
    finally:
        service.workbench.tenant = original
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "INTERNAL"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["requestId"] in body["message"]
