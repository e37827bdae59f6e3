"""The Admin Panel in a real Chromium against real services (``workbench up``): sign-in through
Identity, the pages a role opens, tenant and user management, entity editing, a stream plot;
no request leaves 127.0.0.1."""

from __future__ import annotations

import io
import re
import time
import uuid
from typing import Any

import httpx
import pytest

import workbench
from tests.admin.conftest import ADMIN_PASSWORD, AdminSession, Platform

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def test_health_and_metrics_answer_without_login_and_pages_need_one(platform: Platform) -> None:
    assert httpx.get(f"{platform.admin}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{platform.admin}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["identity"]["ok"] is True
    metrics = httpx.get(f"{platform.admin}/metrics")
    assert metrics.status_code == 200
    assert "# TYPE" in metrics.text
    page = httpx.get(f"{platform.admin}/", follow_redirects=False)
    assert page.status_code in (302, 303), page.text
    assert "login" in page.headers["location"], page.headers


def test_platform_admin_creates_a_tenant_and_a_user_with_a_role(
    platform: Platform, session: AdminSession
) -> None:
    page = session.page
    # names of their own: the test runs again against the same platform (repeated runs)
    suffix = uuid.uuid4().hex[:6]
    tenant, user, client = f"plant-{suffix}", f"erika-{suffix}", f"demo-reader-{suffix}"
    session.sign_in(platform, "system", "admin", ADMIN_PASSWORD)
    for name in ("Tenants", "Users", "Monitoring", "Models", "Data", "Settings"):
        assert page.locator(".bk-tab", has_text=name).count() >= 1, name
    # a tenant: created through the Asset Repository's /tenants with the admin's token
    page.locator("input[placeholder='e.g. plant-linz']").fill(tenant)
    page.get_by_role("button", name="Create tenant").click()
    assert _eventually(lambda: _tenant_exists(platform, tenant))
    page.locator(".tabulator-cell", has_text=tenant).first.wait_for(timeout=60_000)
    # a user of the demo tenant, then a role for them
    session.tab("Users")
    page.locator(".wb-username input").fill(user)
    page.locator(".wb-password input").fill("erika-Pa55word-1")
    page.get_by_role("button", name="Create user").click()
    page.get_by_text(user, exact=True).first.wait_for(timeout=60_000)
    page.locator(".wb-user select").select_option(user)
    page.locator(".wb-role select").select_option("UserManagement")
    page.get_by_role("button", name="Grant role").click()
    from workbench.identity.directory import Directory

    def granted() -> bool:
        with workbench.open(platform.home) as wb:
            return "UserManagement" in Directory.for_workbench(wb).get_user("demo", user).roles

    assert _eventually(granted)
    # a confidential client: its secret shown once, then rotated
    page.locator(".wb-client-id input").fill(client)
    page.get_by_role("button", name="Register confidential client").click()
    page.get_by_text("Secret (shown once)").first.wait_for(timeout=60_000)
    assert _eventually(lambda: client in page.locator(".wb-client select").inner_text())
    page.locator(".wb-client select").select_option(client)
    page.get_by_role("button", name="Rotate secret").click()
    page.get_by_text("New secret of").first.wait_for(timeout=60_000)


def test_tenant_owner_sees_their_tenant_only_edits_an_entity_and_plots_stream_data(
    platform: Platform, session: AdminSession
) -> None:
    page = session.page
    session.sign_in(platform, "demo", "demo", platform.demo_password)
    assert page.locator(".bk-tab", has_text="Settings").count() == 0  # a platform page
    session.tab("Data")
    tenant = page.locator(".wb-data-tenant select")
    tenant.wait_for(timeout=60_000)
    assert tenant.evaluate("e => Array.from(e.options).map(o => o.value)") == ["demo"]
    page.locator(".wb-data-type select").select_option("Demo.Energy/EnergyMeter")
    page.get_by_role("button", name="Find").click()
    session.open_card("Edit entity")  # built when first opened
    entity = page.locator(".wb-entity select")
    assert _eventually(lambda: "Meter-001" in entity.evaluate("e => e.value"))
    found = re.search(r"\(([0-9a-f]{24})\)", entity.evaluate("e => e.value"))
    assert found, entity.evaluate("e => e.value")
    rt_id = found.group(1)
    page.locator(".wb-attribute select").select_option("name")
    page.locator(".wb-value input").fill("Meter renamed in the Admin Panel")
    page.locator(".wb-value input").press("Enter")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved", exact=False).first.wait_for(timeout=60_000)
    with workbench.open(platform.home) as wb:
        saved = wb.tenant("demo").entities.get(rt_id)
    assert saved.attributes["name"] == "Meter renamed in the Admin Panel"
    # stream data of that meter, drawn (not an empty canvas)
    session.open_card("Stream data")
    page.get_by_role("button", name="Plot stream data").click()
    plot = page.locator(".wb-stream-plot")
    plot.locator("canvas").first.wait_for(timeout=90_000)
    time.sleep(2)  # the canvas paints after the model arrives
    shot = plot.screenshot()
    assert _drawn(shot), "the stream plot is blank"


def _eventually(check: Any, timeout: float = 60.0) -> bool:
    """Poll ``check()`` until it is true (the page acts asynchronously, over the websocket)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # not there yet (e.g. the user is still being created)
            pass
        time.sleep(0.5)
    return bool(check())


def _tenant_exists(platform: Platform, tenant_id: str) -> bool:
    with workbench.open(platform.home) as wb:
        return bool(wb.registry.exists(tenant_id))


def _drawn(png: bytes) -> bool:
    """Whether a screenshot holds more than background: many distinct colours."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours: Any = image.getcolors(maxcolors=1_000_000) or []
    return len(colours) > 20


QUERY_NAME = "Meters by name"
VALID_DEFINITION = (
    "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
    "  - type: SetPrimitiveValue@1\n    targetPath: $.answer\n    value: 42\n"
)
BROKEN_DEFINITION = (
    "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n  - type: NoSuchNode@1\n"
)


def test_data_page_runs_a_persisted_query_by_name_with_parameters(
    platform: Platform, session: AdminSession
) -> None:
    with workbench.open(platform.home) as wb:
        wb.tenant("demo").entities.create(
            "System/SimpleRtQuery",
            {
                "name": QUERY_NAME,
                "queryCkTypeId": "Demo.Energy/EnergyMeter",
                "queryColumns": ["name", "serialNumber"],
                "querySorting": "name",
            },
        )
    page = session.page
    session.sign_in(platform, "demo", "demo", platform.demo_password)
    session.tab("Data")
    session.open_card("Persisted queries")
    choice = page.locator(".wb-query select")
    assert _eventually(lambda: QUERY_NAME in choice.inner_text())
    choice.select_option(label=f"{QUERY_NAME} (entities)")
    page.locator(".wb-query-rows input").fill("1")
    page.get_by_role("button", name="Run query").click()
    page.get_by_text(f"{QUERY_NAME} (entities): 1 rows.").first.wait_for(timeout=60_000)
    results = page.locator(".wb-query-results")
    results.locator(".tabulator-cell", has_text="EM-0001").first.wait_for(timeout=60_000)
    assert results.locator(".tabulator-cell", has_text="EM-0002").count() == 0
    session.screenshot("admin-data")
    # without the parameter: the query's own limit, every meter
    page.locator(".wb-query-rows input").fill("")
    page.get_by_role("button", name="Run query").click()
    results.locator(".tabulator-cell", has_text="EM-0002").first.wait_for(timeout=60_000)


def test_operations_page_shows_pipeline_problems_and_the_controllers_answer(
    platform: Platform, session: AdminSession
) -> None:
    with workbench.open(platform.home) as wb:
        entities = wb.tenant("demo").entities
        adapter = entities.create("System.Communication/Adapter", {"name": "plant adapter"})
        flow = entities.create("System.Communication/DataFlow", {"name": "readings"})
        links = [
            ("System/ParentChild", flow.rt_id),
            ("System.Communication/Executes", adapter.rt_id),
        ]
        entities.create(
            "System.Communication/Pipeline",
            {"name": "broken pipeline", "enabled": False, "pipelineDefinition": BROKEN_DEFINITION},
            associations=links,
        )
        entities.create(
            "System.Communication/Pipeline",
            {
                "name": "readings pipeline",
                "pipelineDefinition": VALID_DEFINITION,
            },
            associations=links,
        )
    page = session.page
    session.sign_in(platform, "demo", "demo", platform.demo_password)
    session.tab("Operations")
    pipelines = page.locator(".wb-pipelines-table")
    pipelines.locator(".tabulator-cell", has_text="broken pipeline").first.wait_for(timeout=60_000)
    choice = page.locator(".wb-pipeline select")
    # the choice's options are a patch of their own, which may arrive after the table's
    assert _eventually(lambda: any(o.startswith("readings pipeline") for o in _options(choice)))
    broken = next(o for o in _options(choice) if o.startswith("broken pipeline"))
    choice.select_option(label=broken)
    problems = page.locator(".wb-pipeline-problems")
    problems.locator(".tabulator-cell", has_text="NoSuchNode").first.wait_for(timeout=60_000)
    # execute now: the controller answers that the pipeline's adapter is not connected
    readings = next(o for o in _options(choice) if o.startswith("readings pipeline"))
    choice.select_option(label=readings)
    page.get_by_role("button", name="Execute now").click()
    page.get_by_text("is not connected").first.wait_for(timeout=60_000)
    assert page.get_by_text("workbench adapter run").count() >= 1  # what to do about it
    session.screenshot("admin-operations")


def test_monitoring_plots_adapters_online_pipeline_runs_and_bot_runs(
    platform: Platform, session: AdminSession
) -> None:
    page = session.page
    session.sign_in(platform, "system", "admin", ADMIN_PASSWORD)
    session.tab("Monitoring")
    page.get_by_text("Metrics from the panel's scraped metrics").first.wait_for(timeout=60_000)
    for title in ("requests/s", "adapters online", "pipeline runs/s", "bot runs/s"):
        page.locator(".wb-metric-plot", has_text=title).first.wait_for(timeout=60_000)
    # the controller's gauge, scraped: no adapter is connected
    online = page.locator(".wb-metric-plot", has_text="adapters online").first
    online.get_by_text("latest communication-controller: 0").wait_for(timeout=60_000)
    online.locator("canvas").first.wait_for(timeout=60_000)
    # no pipeline has run and no Bot Service runs here: said, not an empty frame
    runs = page.locator(".wb-metric-plot", has_text="pipeline runs/s").first
    runs.get_by_text("no samples yet").wait_for(timeout=60_000)
    session.screenshot("admin-monitoring")


def _options(select: Any) -> list[str]:
    labels: list[str] = select.evaluate("e => Array.from(e.options).map(o => o.text)")
    return labels
