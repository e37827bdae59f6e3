"""``workbench serve asset-repository`` in a subprocess: binds loopback, serves, warns on
--no-auth, refuses to start without a token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workbench.testing.http import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _command(data_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench",
        "serve",
        "asset-repository",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        _command(tmp_path / "wb", port, "--no-auth", "--log-format", "json"),
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serves_on_loopback_and_warns_without_auth(
    serving: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = serving
    assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{url}/tenants/ghost/ck/libraries").status_code == 404
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert "authentication is OFF" in stderr
    assert '"request_id"' in stderr  # JSON access log lines carry the request id
    assert '"route": "/tenants/{tenantId}/ck/libraries"' in stderr


def test_dev_static_token_mode_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        _command(tmp_path / "wb", free_port(), "--dev-static-token"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "WORKBENCH_API_TOKEN" in done.stderr
