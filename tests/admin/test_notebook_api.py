"""``wb.admin``'s connection in a notebook: the settings the hub's spawner sets
(``WORKBENCH_API_URL``, ``WORKBENCH_API_TOKEN``), else the platform defaults; arguments win."""

from __future__ import annotations

import pytest

from workbench.admin import notebook_api


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("API_URL", "API_TOKEN", "IDENTITY_URL", "IDENTITY_ISSUER", "IDENTITY_PORT")
    for name in (*names, "SERVICE_HOST", "ASSET_REPOSITORY_PORT"):
        monkeypatch.delenv(f"WORKBENCH_{name}", raising=False)


def test_the_spawner_settings_name_the_services_and_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKBENCH_API_URL", "http://assets:5001/")
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "kernel-token")
    monkeypatch.setenv("WORKBENCH_IDENTITY_URL", "http://identity:5003")
    api = notebook_api()
    try:
        assert (api.api_url, api.identity_url, api.token) == (
            "http://assets:5001",
            "http://identity:5003",
            "kernel-token",
        )
    finally:
        api.close()


def test_without_settings_the_defaults_and_arguments_win() -> None:
    api = notebook_api()
    try:
        assert (api.api_url, api.identity_url, api.token) == (
            "http://127.0.0.1:5001",
            "http://127.0.0.1:5003",
            None,
        )
    finally:
        api.close()
    given = notebook_api(api_url="http://a:1", identity_url="http://i:2/", token="t")
    try:
        assert (given.api_url, given.identity_url, given.token) == ("http://a:1", "http://i:2", "t")
    finally:
        given.close()
