"""Every Admin Panel page after login in Chromium (network limited to loopback), each waited for
until its content is there; with ``WORKBENCH_ADMIN_SCREENSHOTS=docs/images`` the pages are
saved as ``docs/images/admin-<page>.png`` (the screenshots of docs/admin-panel.md; the data,
operations and monitoring ones come from the tests of those pages' tasks)."""

from __future__ import annotations

import time

import pytest

from tests.admin.conftest import ADMIN_PASSWORD, AdminSession, Platform

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

#: the canvas of a plot paints a moment after its model arrives
PAINT_S = 2.0


def test_login_and_the_platform_admins_pages(platform: Platform, session: AdminSession) -> None:
    page = session.page
    page.goto(f"{platform.admin}/")
    page.wait_for_url(f"{platform.identity}/login?**", timeout=60_000)
    page.locator("#username").wait_for(timeout=60_000)
    session.screenshot("admin-login")
    session.sign_in(platform, "system", "admin", ADMIN_PASSWORD)
    # the header bar names who is signed in, with the way out
    assert page.locator(".wb-signed-in a", has_text="log out").count() == 1
    page.locator(".tabulator-cell >> visible=true", has_text="demo").first.wait_for(timeout=60_000)
    session.screenshot("admin-tenants")
    session.tab("Users")
    page.locator(".wb-username input").wait_for(timeout=60_000)
    page.locator(".tabulator-cell >> visible=true").first.wait_for(
        timeout=60_000
    )  # the tenant's users
    session.screenshot("admin-users")
    session.tab("Settings")
    page.locator(".tabulator-cell >> visible=true", has_text="WORKBENCH_").first.wait_for(
        timeout=60_000
    )
    session.screenshot("admin-settings")


def test_a_tenant_owners_models_page(platform: Platform, session: AdminSession) -> None:
    page = session.page
    session.sign_in(platform, "demo", "demo", platform.demo_password)
    session.tab("Models")
    page.locator(".tabulator-cell >> visible=true").first.wait_for(timeout=60_000)  # the libraries
    page.locator("canvas").first.wait_for(timeout=90_000)  # the type graph
    time.sleep(PAINT_S)
    session.screenshot("admin-models")
