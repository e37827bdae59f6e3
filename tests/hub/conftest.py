"""A real platform for the hub tests: Identity, Asset Repository and JupyterHub (with the real
configurable-http-proxy) on free loopback ports, one data directory for the whole module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
pytest.importorskip("oauthenticator", reason="the hub extra is not installed")

from workbench.hub.session import HubSession
from workbench.hub.stack import HubStack

ADMIN_PASSWORD = "hub-admin-password-123"
ALICE_PASSWORD = "alice-password-123"
BOB_PASSWORD = "bob-password-1234"

PROJECT = Path(__file__).resolve().parents[2]
PROXY = PROJECT / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"


def require_proxy() -> None:
    """Skip without configurable-http-proxy locally; fail under CI (.ci/run installs it)."""
    if PROXY.exists() or shutil.which("configurable-http-proxy") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("configurable-http-proxy is missing: run `make hub-proxy` (npm)")
    pytest.skip("configurable-http-proxy is not installed (make hub-proxy)")


def _prepare(workbench: Any, directory: Any) -> None:
    from workbench.demo import build_demo_tenant

    build_demo_tenant(workbench, "acme", with_streams=False)
    workbench.tenants.create("globex")
    directory.ensure_builtin_groups("acme")
    directory.ensure_builtin_groups("globex")
    directory.create_user("acme", "alice", password=ALICE_PASSWORD, groups=["TenantOwners"])
    directory.create_user("globex", "bob", password=BOB_PASSWORD, groups=["TenantOwners"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    require_proxy()
    home = tmp_path_factory.mktemp("hub") / "wb"
    platform = HubStack(home, admin_password=ADMIN_PASSWORD, prepare=_prepare)
    try:
        platform.start()
    except BaseException:
        platform.stop()
        raise
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def session(stack: HubStack) -> Iterator[HubSession]:
    with HubSession(stack.hub_url) as s:
        yield s
