"""``workbench up`` with the Bot Service: every service a process of its own; a promoted bot runs
against the Asset Repository under its own token."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import workbench
from tests.bots.conftest import bot_notebook, client_token
from workbench.testing.http import free_port


def test_up_serves_the_bot_service_and_runs_a_bot(tmp_path: Path) -> None:
    ports = {"asset-repository": free_port(), "identity": free_port(), "bot-service": free_port()}
    command = [
        sys.executable,
        "-m",
        "workbench",
        "up",
        "--data-dir",
        str(tmp_path),
        "--demo-days",
        "0",
    ]
    for name, port in ports.items():
        command += ["--service", name, "--port", f"{name}={port}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bots = f"http://127.0.0.1:{ports['bot-service']}"
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if not line or "Ctrl-C stops everything" in line:
                break
        assert "Mesh Workbench is up" in "".join(lines), "".join(lines)
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(bots + path, timeout=10).status_code == 200
        from workbench.identity.directory import Directory

        with workbench.open(tmp_path) as wb:
            _, secret = Directory.for_workbench(wb).create_client(
                "demo", "bot-author", grant_types=["client_credentials"],
                scopes=["workbench_api"], roles=["Development"],
            )  # fmt: skip
        token = client_token(f"http://127.0.0.1:{ports['identity']}", "bot-author", str(secret))
        headers = {"Authorization": f"Bearer {token}"}
        notebook = bot_notebook(
            ["n = wb.entities.count('Demo.Energy/EnergyMeter')\nwb.bot.output('meters', n)"]
        )
        body = {"notebook": notebook, "kind": "bot", "name": "count", "options": {"timeout": 600}}
        with httpx.Client(base_url=bots, headers=headers, timeout=600) as http:
            assert http.get("/tenants/demo/bots").status_code == 200
            promoted = http.post("/tenants/demo/promotions", json=body)
            assert promoted.status_code == 200, promoted.text
            run = http.post("/tenants/demo/bots/count/runs", json={"wait": True}).json()
            assert http.get("/tenants/other/bots").status_code == 403
        assert run["status"] == "succeeded", run["error"]
        assert run["outputs"] == {"meters": 2}
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(lines) + rest
