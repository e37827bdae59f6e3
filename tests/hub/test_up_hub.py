"""``workbench up`` (``make run``) starts the hub with the other services; Ctrl-C stops all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.hub.conftest import require_proxy
from workbench.testing.http import free_port

pytestmark = [pytest.mark.hub, pytest.mark.integration, pytest.mark.slow]


def test_up_starts_the_hub(tmp_path: Path) -> None:
    require_proxy()
    ports = {"identity": free_port(), "asset-repository": free_port(), "hub": free_port()}
    command = [sys.executable, "-m", "workbench", "up", "--data-dir", str(tmp_path / "wb")]
    command += ["--demo-days", "0"]
    for name, port in ports.items():
        command += ["--service", name, "--port", f"{name}={port}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Mesh Workbench is up" in text, text
        assert f"http://127.0.0.1:{ports['hub']}/hub/" in text
        with urllib.request.urlopen(
            f"http://127.0.0.1:{ports['hub']}/hub/health", timeout=5
        ) as response:
            assert response.status == 200
        assert (tmp_path / "wb" / "secrets" / "hub-crypt-key").stat().st_mode & 0o077 == 0
        assert (tmp_path / "wb" / "secrets" / "hub-client-secret").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            output.extend(process.stdout.readlines())
            process.stdout.close()
    assert process.returncode == 0, "".join(output[-40:])
