"""Issue 18 "Also": schemathesis against both services' ``/openapi.json`` with a valid token.

Real servers over real HTTP (an Asset Repository over the two demo tenants, an Identity service
with its bootstrap admin); every operation of each schema gets :data:`EXAMPLES` generated
requests (valid and invalid ones, schemathesis' default generation modes), about half of them
aimed at the existing tenant and CK type so that they reach the handlers. The bound is the
example count (a few minutes in all on one core). A 5xx answer is a failure; the test prints
what it tried (examples, operations, 5xx) and the server is healthy afterwards.
"""

# ruff: noqa: F811 - the server fixture is imported from limits_fixtures
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import workbench
from tests.identity.conftest import ADMIN_PASSWORD, REDIRECT_URI, Browser, start_identity
from tests.security.limits_fixtures import ALL_TOKEN, fuzz_server  # noqa: F401
from workbench.testing.http import ServiceServer

#: generated requests per operation
EXAMPLES = 25
#: path parameters aimed at what exists, for about half of the examples
REAL_PATH_VALUES = {
    "tenantId": "energy",
    "ckTypeId": "Demo.Energy/EnergyMeter",
    "modelId": "Demo.Energy",
    "rtId": "6560a1b2c3d4e5f607182932",
}
#: operations that would end the run if aimed at the real thing (the tenant under test)
KEEP_GENERATED = {("DELETE", "/tenants/{tenantId}")}


@dataclass
class FuzzReport:
    service: str
    examples: int = 0
    operations: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items()))
        return (
            f"{self.service}: {self.examples} examples over {self.operations} operations in "
            f"{self.seconds:.0f} s, {len(self.server_errors)} server errors ({statuses})"
        )


def fuzz(url: str, headers: dict[str, str], report: FuzzReport) -> None:
    """Run every operation of ``url``'s OpenAPI schema, counting into ``report``."""
    began = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    report.operations = len(operations)
    for operation in operations:
        _fuzz_operation(url, headers, report, operation)
    report.seconds = time.monotonic() - began


def _fuzz_operation(url: str, headers: dict[str, str], report: FuzzReport, operation: Any) -> None:
    keep = (operation.method.upper(), operation.path) in KEEP_GENERATED

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), aim=st.booleans())
    def run(case: Any, aim: bool) -> None:
        if aim and not keep and case.path_parameters:
            for name in case.path_parameters:
                if name in REAL_PATH_VALUES:
                    case.path_parameters[name] = REAL_PATH_VALUES[name]
        try:
            response = case.call(base_url=url, headers=headers, timeout=30)
        except Exception as exc:  # a dropped connection is a server failure too
            report.server_errors.append(f"{case.method} {case.formatted_path}: {exc!r}")
            return
        report.examples += 1
        status = response.status_code
        report.by_status[status] = report.by_status.get(status, 0) + 1
        if status >= 500:
            report.server_errors.append(
                f"{status} {case.method} {case.formatted_path} "
                f"query={case.query!r} body={str(case.body)[:300]!r}: {response.text[:300]}"
            )

    run()


@pytest.fixture(scope="module")
def identity_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An Identity service and a platform admin's access token for it."""

    def prepare(wb: workbench.Workbench) -> None:
        wb.tenants.create("demo")

    instance, _ = start_identity(tmp_path_factory.mktemp("fuzz-idp") / "idp", prepare=prepare)
    try:
        instance.directory.create_client(
            "system", "admin-ui", public=True, redirect_uris=[REDIRECT_URI], first_party=True
        )
        browser = Browser(instance.url)
        try:
            code, verifier = browser.authorize(
                "admin-ui", username="admin", password=ADMIN_PASSWORD, tenant="system"
            )
            exchanged = browser.exchange("admin-ui", code, verifier)
            assert exchanged.status_code == 200, exchanged.text
        finally:
            browser.close()
        yield instance.url, exchanged.json()["access_token"]
    finally:
        instance.server.stop()
        instance.workbench.close()


def _healthy(url: str) -> None:
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_both_openapi_documents_load_with_unique_operation_ids(
    fuzz_server: ServiceServer, identity_service: tuple[str, str]
) -> None:
    """/openapi.json of Identity answered 500 under warnings-as-errors: GET and POST /userinfo
    shared one operation id (FastAPI's "Duplicate Operation ID" warning)."""
    for url in (fuzz_server.url, identity_service[0]):
        response = httpx.get(f"{url}/openapi.json", timeout=30)
        assert response.status_code == 200, response.text[:300]
        ids = [
            operation["operationId"]
            for item in response.json()["paths"].values()
            for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation
        ]
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_fuzz_asset_repository_openapi(fuzz_server: ServiceServer) -> None:
    report = FuzzReport("Asset Repository")
    fuzz(fuzz_server.url, {"Authorization": f"Bearer {ALL_TOKEN}"}, report)
    print(report.line())
    assert report.examples >= report.operations * 10, report.line()
    assert not report.server_errors, "\n".join([report.line(), *report.server_errors[:20]])
    _healthy(fuzz_server.url)


def test_fuzz_identity_openapi(identity_service: tuple[str, str]) -> None:
    url, token = identity_service
    report = FuzzReport("Identity")
    fuzz(url, {"Authorization": f"Bearer {token}"}, report)
    print(report.line())
    assert report.examples >= report.operations * 10, report.line()
    assert not report.server_errors, "\n".join([report.line(), *report.server_errors[:20]])
    _healthy(url)
