"""``workbench up`` (what ``make run`` runs): Identity and the Asset Repository start, every
service is healthy, a real token from Identity reads the demo tenant, Ctrl-C stops all."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from workbench.testing.up import read_until_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client_credentials_token(home: Path, identity: str) -> str:
    """A real token from the running Identity service for a client of the demo tenant."""
    import workbench
    from workbench.identity.directory import Directory

    with workbench.open(home) as wb:
        _, secret = Directory.for_workbench(wb).create_client(
            "demo", "smoke-test", roles=["DashboardViewer"]
        )
    assert secret is not None
    basic = base64.b64encode(f"smoke-test:{secret}".encode()).decode()
    request = urllib.request.Request(
        f"{identity}/token",
        data=b"grant_type=client_credentials",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return str(json.load(r)["access_token"])


def test_up_builds_the_demo_serves_it_and_stops_cleanly(tmp_path: Path) -> None:
    port, identity_port = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--data-dir", str(tmp_path),
        "--port", f"asset-repository={port}", "--port", f"identity={identity_port}",
        "--service", "identity", "--service", "asset-repository", "--demo-days", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    try:
        output = read_until_up(process, timeout=120)
        assert "Mesh Workbench is up" in output, output
        assert f"http://127.0.0.1:{port}/tenants/demo/graphql/playground" in output
        assert "demo login: demo / " in output
        for service_port in (port, identity_port):
            with urllib.request.urlopen(f"http://127.0.0.1:{service_port}/healthz", timeout=5) as r:
                assert r.status == 200
        token = _client_credentials_token(tmp_path, f"http://127.0.0.1:{identity_port}")
        query = {"query": "{ runtime { rtDemoEnergyMeter { items { name } } } }"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/tenants/demo/graphql",
            data=json.dumps(query).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            items = json.load(r)["data"]["runtime"]["rtDemoEnergyMeter"]["items"]
        assert {i["name"] for i in items} == {"Meter-001", "Meter-002"}
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output + rest
    for service_port in (port, identity_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", service_port)) != 0, "a service still listens"


def test_a_hub_that_fails_to_start_leaves_the_rest_running(tmp_path: Path) -> None:
    """Without a working hub (here: its configuration is missing) the other services run on,
    and the output says how to get the hub."""
    import os

    port, identity_port, hub_port = _free_port(), _free_port(), _free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--data-dir", str(tmp_path), "--no-demo",
        "--port", f"asset-repository={port}", "--port", f"identity={identity_port}",
        "--port", f"hub={hub_port}", "--service", "identity", "--service", "asset-repository",
        "--service", "hub",
    ]  # fmt: skip
    env = os.environ | {"WORKBENCH_HUB_CONFIG": str(tmp_path / "missing_config.py")}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output = rest = ""
    try:
        output = read_until_up(process, timeout=120)
        assert "hub: not started" in output, output
        assert "make hub-proxy" in output
        assert "Mesh Workbench is up" in output
        assert f"hub               http://127.0.0.1:{hub_port}" not in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        platform = json.loads((tmp_path / "platform.json").read_text())
        assert set(platform["urls"]) == {"identity", "asset-repository"}
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output + rest
    assert rest.rstrip().endswith("stopped"), rest
