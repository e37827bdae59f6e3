"""The settings tree finds the services beside a process: an explicit URL wins, else the port
``workbench up`` exports, else there is none."""

from __future__ import annotations

from workbench.settings import Settings


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
