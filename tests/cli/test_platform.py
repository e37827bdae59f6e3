"""Finding the data directory and the running platform without flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli.platform import (
    PLATFORM_FILE,
    default_home,
    remove_platform,
    running_platform,
    write_platform,
)


def test_data_directory_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert default_home() == (tmp_path / "home" / ".workbench").resolve()
    (tmp_path / ".workbench").mkdir()
    assert default_home() == (tmp_path / ".workbench").resolve()  # make run's directory first
    monkeypatch.setenv("WORKBENCH_HOME", "")  # empty: as if unset
    assert default_home() == (tmp_path / ".workbench").resolve()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "env"))
    assert default_home() == (tmp_path / "env").resolve()
    monkeypatch.setenv("WORKBENCH_HOME", "~/relative")
    assert default_home() == (tmp_path / "home" / "relative").resolve()
    assert default_home(tmp_path / "explicit") == (tmp_path / "explicit").resolve()


def test_a_platform_is_running_only_while_its_api_answers(tmp_path: Path) -> None:
    from workbench.testing.http import free_port

    write_platform(tmp_path, {"asset-repository": f"http://127.0.0.1:{free_port()}"})
    assert json.loads((tmp_path / PLATFORM_FILE).read_text())["urls"]
    assert running_platform(tmp_path) is None  # left behind by a killed platform: ignored
    remove_platform(tmp_path)
    assert not (tmp_path / PLATFORM_FILE).exists()


def test_a_running_platform_is_found(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from workbench.testing.http import ServiceServer

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    with ServiceServer(app) as server:
        write_platform(tmp_path, {"asset-repository": server.url, "identity": "http://127.0.0.1:1"})
        found = running_platform(tmp_path)
        assert found is not None
        assert found.api_url == server.url
        assert found.identity_url == "http://127.0.0.1:1"


def test_the_platform_certificate_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``workbench up --tls`` records its CA bundle; a command that finds the platform trusts
    it (unless SSL_CERT_FILE already says what to trust)."""
    import os

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    bundle = tmp_path / "ca-bundle.pem"
    write_platform(tmp_path, {"asset-repository": "https://127.0.0.1:1"}, trust=bundle)
    assert running_platform(tmp_path) is None  # nothing answers there
    assert os.environ["SSL_CERT_FILE"] == str(bundle)
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/mine.pem")
    running_platform(tmp_path)
    assert os.environ["SSL_CERT_FILE"] == "/etc/ssl/mine.pem"
