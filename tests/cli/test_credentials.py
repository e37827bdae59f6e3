"""The CLI's bearer token: the ``api_token`` setting (``WORKBENCH_API_TOKEN``) wins over the
stored login, which is used while it has not expired."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workbench.cli.credentials import access_token, credentials_path, save_credentials

API = "http://127.0.0.1:5001"


@pytest.fixture(autouse=True)
def _config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("WORKBENCH_API_TOKEN", raising=False)


def _store(token: str, expires_in: float) -> None:
    entry = {
        "identityUrl": "http://127.0.0.1:9",
        "accessToken": token,
        "refreshToken": None,
        "expiresAt": time.time() + expires_in,
    }
    save_credentials({API: entry})


def test_no_setting_and_no_login_is_no_token(tmp_path: Path) -> None:
    assert access_token(API) is None
    assert credentials_path() == tmp_path / "config" / "workbench" / "credentials.json"


def test_the_stored_login_is_used_until_it_expires() -> None:
    _store("stored-token", 3600)
    assert access_token(API) == "stored-token"
    assert access_token("http://elsewhere:5001") is None


def test_the_api_token_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    _store("stored-token", 3600)
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "static-token")
    assert access_token(API) == "static-token"
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "")  # empty: as if unset
    assert access_token(API) == "stored-token"
