"""``workbench serve identity --port P``: the issuer (discovery, JWKS) follows the bound port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from workbench.testing.http import free_port

pytestmark = pytest.mark.integration


def _discovery(port: int, env: dict[str, str], home: Path) -> dict[str, str]:
    command = [sys.executable, "-m", "workbench", "serve", "identity", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "the Identity service exited"
            try:
                url = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    body: dict[str, str] = response.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("the Identity service did not answer")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_IDENTITY_")}
    return env | extra


def test_issuer_follows_the_port_bound(tmp_path: Path) -> None:
    port = free_port()
    found = _discovery(port, _env(), tmp_path / "a")
    assert found["issuer"] == f"http://127.0.0.1:{port}"
    assert found["jwks_uri"].startswith(f"http://127.0.0.1:{port}/")
    assert found["token_endpoint"].startswith(f"http://127.0.0.1:{port}/")


def test_a_configured_issuer_wins(tmp_path: Path) -> None:
    port = free_port()
    found = _discovery(port, _env(WORKBENCH_IDENTITY_ISSUER="https://id.example.org"), tmp_path)
    assert found["issuer"] == "https://id.example.org"
