"""``admin-sessions`` (BENCHMARKS.md) in quick mode against real servers (an Asset Repository
and Admin Panel subprocesses, Bokeh client sessions), and the shell's static-token inputs."""

from __future__ import annotations

from collections.abc import Iterator

import panel as pn
import pytest

from workbench.admin.api import AdminApi
from workbench.admin.shell import AdminShell
from workbench.testing.http import free_port


@pytest.fixture
def offline_api() -> Iterator[AdminApi]:
    port = free_port()  # nothing listens: pages that call a service show the error in place
    api = AdminApi(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "a-static-token")
    yield api
    api.close()


def _tabs(shell: AdminShell) -> pn.Tabs:
    column = shell.__panel__()
    assert isinstance(column, pn.Column)
    tabs = column.objects[1]
    assert isinstance(tabs, pn.Tabs)
    return tabs


def test_shell_takes_tenants_and_roles_when_the_token_is_not_a_jwt(offline_api: AdminApi) -> None:
    bare = AdminShell(api=offline_api)
    assert (bare.tenants, bare.pages()) == ([], ["Data"])
    shell = AdminShell(
        api=offline_api, tenant_ids=["demo"], role_names=["UserManagement"], start_page="Data"
    )
    assert shell.tenants == ["demo"]
    assert shell.roles == {"UserManagement"}
    assert shell.pages() == ["Users", "Data"]
    tabs = _tabs(shell)
    assert tabs.active == 1  # the start page, built; the other one is not built yet
    assert tabs.objects[1].objects
    assert not tabs.objects[0].objects


def test_shell_opens_the_first_page_when_the_start_page_is_not_offered(
    offline_api: AdminApi,
) -> None:
    shell = AdminShell(api=offline_api, tenant_ids=["demo"], role_names=[], start_page="Settings")
    tabs = _tabs(shell)
    assert tabs.active == 0
    assert tabs.objects[0].name == "Data"


@pytest.mark.slow
def test_admin_sessions_quick_reports_page_load_interaction_and_the_baseline() -> None:
    from workbench.bench.admin import admin_sessions

    report = admin_sessions(quick=True)
    figures = {m.name: m for m in report.metrics}
    assert report.shape["sessions"] == 5
    assert figures["failed sessions"].value == 0, report.baseline["errors"]
    for name in (
        "page load p50",
        "page load p95",
        "interaction p50",
        "interaction p95",
        "hello-world page load p95",
        "hello-world interaction p95",
        "page load / hello-world (p95)",
        "interaction / hello-world (p95)",
    ):
        assert figures[name].value > 0, name
    assert figures["page load p95"].target == "< 1000"
    assert figures["page load p95"].met is not None
    assert report.baseline["hello_world_page_load"]["p95_ms"] > 0
