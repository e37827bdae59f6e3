"""The Admin Panel in a real Chromium against real services (``workbench up``): sign-in through
Identity, the pages a role opens, tenant and user management, entity editing, a stream plot;
no request leaves 127.0.0.1."""

from __future__ import annotations

import io
import re
import time
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
    session.sign_in(platform, "system", "admin", ADMIN_PASSWORD)
    for name in ("Tenants", "Users", "Monitoring", "Models", "Data", "Settings"):
        assert page.locator(".bk-tab", has_text=name).count() >= 1, name
    # a tenant: created through the Asset Repository's /tenants with the admin's token
    page.locator("input[placeholder='e.g. plant-linz']").fill("plant-linz")
    page.get_by_role("button", name="Create tenant").click()
    assert _eventually(lambda: _tenant_exists(platform, "plant-linz"))
    page.locator(".tabulator-cell", has_text="plant-linz").first.wait_for(timeout=60_000)
    # a user of the demo tenant, then a role for them
    session.tab("Users")
    page.locator(".wb-username input").fill("erika")
    page.locator(".wb-password input").fill("erika-Pa55word-1")
    page.get_by_role("button", name="Create user").click()
    page.get_by_text("erika", exact=True).first.wait_for(timeout=60_000)
    page.locator(".wb-user select").select_option("erika")
    page.locator(".wb-role select").select_option("UserManagement")
    page.get_by_role("button", name="Grant role").click()
    from workbench.identity.directory import Directory

    def granted() -> bool:
        with workbench.open(platform.home) as wb:
            return "UserManagement" in Directory.for_workbench(wb).get_user("demo", "erika").roles

    assert _eventually(granted)
    # a confidential client: its secret shown once, then rotated
    page.locator(".wb-client-id input").fill("demo-reader")
    page.get_by_role("button", name="Register confidential client").click()
    page.get_by_text("Secret (shown once)").first.wait_for(timeout=60_000)
    assert _eventually(lambda: "demo-reader" in page.locator(".wb-client select").inner_text())
    page.locator(".wb-client select").select_option("demo-reader")
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
    session.open_card("wb-editor-card")  # built when first opened
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
    session.open_card("wb-streams-card")
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
