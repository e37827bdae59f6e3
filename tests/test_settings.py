"""The settings tree finds the services beside a process: an explicit URL wins, else the port
``workbench up`` exports, else there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.settings import Settings, current_settings


def test_a_neighbour_is_its_url_else_the_port_up_exported_else_none() -> None:
    settings = Settings(
        service_host="127.0.0.1",
        bot_service_url="",
        bot_service_port=5109,
        hub_url="http://hub:8000/",
        communication_controller_url="",
        communication_controller_port=None,
    )
    assert settings.neighbour_url("hub") == "http://hub:8000"
    assert settings.neighbour_url("bot_service", "https") == "https://127.0.0.1:5109"
    assert settings.neighbour_url("communication_controller") is None


def test_the_asset_repository_url_is_api_url_else_host_and_port() -> None:
    assert Settings(api_url="http://api:5001/").asset_repository_url() == "http://api:5001"
    derived = Settings(api_url="", service_host="10.0.0.2", asset_repository_port=5101)
    assert derived.asset_repository_url("https") == "https://10.0.0.2:5101"


def test_current_settings_follow_the_environment_and_are_built_once_per_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKBENCH_ADAPTER_ARCHIVE_DIR", "/srv/archives")
    first = current_settings()
    assert first.adapter_archive_dir == "/srv/archives"
    assert current_settings() is first  # unchanged environment: the same settings
    monkeypatch.setenv("WORKBENCH_ADAPTER_ARCHIVE_DIR", "/srv/other")
    assert current_settings().adapter_archive_dir == "/srv/other"
    monkeypatch.setenv("HOME", "/home/elsewhere")  # the default home follows HOME
    monkeypatch.delenv("WORKBENCH_HOME", raising=False)
    assert current_settings().home == Path("/home/elsewhere/.workbench")


def test_the_execute_python_settings_reach_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.communication.nodes.python_sandbox import SandboxSettings

    monkeypatch.setenv("WORKBENCH_EXECUTE_PYTHON_MAX_MEMORY_MB", "512")
    monkeypatch.setenv("WORKBENCH_EXECUTE_PYTHON_ALLOW_UNSANDBOXED", "true")
    sandbox = SandboxSettings.from_settings()
    assert (sandbox.max_memory_mb, sandbox.allow_unsandboxed) == (512, True)
    assert SandboxSettings.from_settings(Settings()).max_timeout_seconds == 300.0
