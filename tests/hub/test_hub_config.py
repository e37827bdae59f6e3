"""The one-machine hub configuration (``hub_config/jupyterhub_config.py``) takes every value from
the settings tree: the ``WORKBENCH_HUB_*`` names deployments use reach the hub, and without them
the documented defaults apply."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[2]


def _load(monkeypatch: pytest.MonkeyPatch, home: Path, **env: str) -> Any:
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    for name in (
        "JUPYTERHUB_CRYPT_KEY",
        "WORKBENCH_API_URL",
        "WORKBENCH_HUB_CLIENT_SECRET",
        "WORKBENCH_BOT_SERVICE_URL",
        "WORKBENCH_BOT_SERVICE_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "hub_config")).load_config()


def test_the_hub_settings_reach_the_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    c = _load(
        monkeypatch,
        tmp_path,
        WORKBENCH_HUB_BIND_URL="http://127.0.0.1:18000",
        WORKBENCH_HUB_API_PORT="18081",
        WORKBENCH_HUB_PROXY_API_PORT="18001",
        WORKBENCH_HUB_CLIENT_ID="hub-2",
        WORKBENCH_HUB_CLIENT_SECRET="s3cret",
        WORKBENCH_HUB_DEFAULT_TENANT="plant-a",
        WORKBENCH_HUB_ISOLATION="none",
        WORKBENCH_HUB_KERNEL_PYTHON="/opt/py/bin/python",
        WORKBENCH_HUB_WORK_ROOT=str(tmp_path / "work"),
        WORKBENCH_HUB_NOTEBOOKS=str(tmp_path / "nb"),
        WORKBENCH_API_URL="http://127.0.0.1:15001/",
        WORKBENCH_BOT_SERVICE_URL="http://127.0.0.1:15009/",
    )
    assert c.JupyterHub.bind_url == "http://127.0.0.1:18000"
    assert c.JupyterHub.hub_port == 18081
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:18001"
    auth = c.WorkbenchAuthenticator
    assert (auth.client_id, auth.client_secret) == ("hub-2", "s3cret")
    assert auth.default_tenant == "plant-a"
    assert auth.oauth_callback_url == "http://127.0.0.1:18000/hub/oauth_callback"
    spawner = c.TenantSpawner
    assert spawner.api_url == "http://127.0.0.1:15001"
    assert spawner.bot_service_url == "http://127.0.0.1:15009"
    assert spawner.isolation == "none"
    assert spawner.python == "/opt/py/bin/python"
    assert spawner.work_root == str(tmp_path / "work")
    assert spawner.seed_notebooks == str(tmp_path / "nb")


def test_without_hub_settings_the_defaults_apply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.startswith("WORKBENCH_HUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("WORKBENCH_SERVICE_HOST", raising=False)
    monkeypatch.delenv("WORKBENCH_ASSET_REPOSITORY_PORT", raising=False)
    c = _load(monkeypatch, tmp_path)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_port == 8081
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.WorkbenchAuthenticator.client_id == "jupyterhub"
    spawner = c.TenantSpawner
    assert spawner.api_url == "http://127.0.0.1:5001"
    assert spawner.bot_service_url == "http://127.0.0.1:5009"
    assert spawner.isolation == "auto"
    assert spawner.seed_notebooks == str(ROOT / "notebooks")


def test_the_bot_service_workbench_up_runs_reaches_the_servers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `workbench up` exports the port it chose; the spawner hands the URL to the servers
    c = _load(monkeypatch, tmp_path, WORKBENCH_BOT_SERVICE_PORT="15109")
    assert c.TenantSpawner.bot_service_url == "http://127.0.0.1:15109"


def test_a_bad_hub_port_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="hub_api_port"):
        _load(monkeypatch, tmp_path, WORKBENCH_HUB_API_PORT="eighty")
