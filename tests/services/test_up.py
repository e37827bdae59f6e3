"""``workbench up`` (what ``make run`` runs): start, every service healthy, Ctrl-C stops all."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_builds_the_demo_serves_it_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "up",
            "--data-dir",
            str(tmp_path),
            "--service",
            "asset-repository",
            "--port",
            f"asset-repository={port}",
            "--demo-days",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert "Mesh Workbench is up" in output, output
        assert f"http://127.0.0.1:{port}/tenants/demo/graphql/playground" in output
        token = (tmp_path / "secrets" / "api-token").read_text().strip()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/tenants/demo/graphql",
            data=json.dumps(
                {"query": "{ runtime { rtDemoEnergyMeter { items { name } } } }"}
            ).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            names = {
                i["name"] for i in json.load(r)["data"]["runtime"]["rtDemoEnergyMeter"]["items"]
            }
        assert names == {"Meter-001", "Meter-002"}
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(lines) + rest
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the service still listens"
