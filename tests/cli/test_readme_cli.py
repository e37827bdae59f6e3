"""The README's command-line walk-through works, as written, against a running ``workbench up``.

The platform runs on a temporary data directory ``<tmp>/.workbench`` (what ``make run`` uses in
the checkout), the commands run in ``<tmp>`` without ``--data-dir`` or ``--url``: they find the
data directory and the platform themselves. ``workbench login`` is approved the way a user does
it, on the Identity pages, as the demo user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.browser import approve_device
from workbench.testing.http import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: words that make a startup line look like something went wrong
ALARMING = re.compile(r"\b(error|exception|traceback|warning|failed|404)\b", re.I)


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Command line") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block under '### Command line'"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKBENCH_HOME", "WORKBENCH_API_URL", "WORKBENCH_API_TOKEN")
    }
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 180) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


def _workbench(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _login(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        prompt = process.stderr.readline()
        found = re.search(r"Open (\S+) and enter the code (\S+)", prompt)
        assert found, prompt
        password = (cwd / ".workbench" / "secrets" / "demo-password").read_text().strip()
        approve_device(found.group(1), tenant="demo", username="demo", password=password)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "logged in" in out
    credentials = Path(env["XDG_CONFIG_HOME"]) / "workbench" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600


def _stored_login(env: dict[str, str]) -> dict[str, object]:
    path = Path(env["XDG_CONFIG_HOME"]) / "workbench" / "credentials.json"
    (entry,) = json.loads(path.read_text()).values()
    assert isinstance(entry, dict)
    return entry


def _expire_access_token(env: dict[str, str]) -> object:
    """Make the stored access token look expired; returns the refresh token stored."""
    path = Path(env["XDG_CONFIG_HOME"]) / "workbench" / "credentials.json"
    data = json.loads(path.read_text())
    for entry in data.values():
        entry["expiresAt"] = 0
    path.write_text(json.dumps(data))
    return _stored_login(env)["refreshToken"]


def test_readme_cli_commands_work_against_the_running_platform(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port, identity_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--data-dir", str(tmp_path / ".workbench"),
        "--service", "identity", "--service", "asset-repository", "--demo-days", "1",
        "--port", f"asset-repository={port}", "--port", f"identity={identity_port}",
    ]  # fmt: skip
    up = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    startup = rest = ""
    try:
        startup = _read_until(up, "Ctrl-C stops everything")
        assert "Mesh Workbench is up" in startup, startup
        assert re.search(r"demo stream data .* from \S+Z to \S+Z", startup), startup
        alarming = [line for line in startup.splitlines() if ALARMING.search(line)]
        assert alarming == [], alarming
        assert (tmp_path / ".workbench" / "platform.json").is_file()

        commands = readme_commands()
        assert commands[0] == "workbench login"
        # the negative twin: before logging in, a tenant command is refused with the way out
        refused = _workbench(["ck", "list", "--tenant", "demo"], tmp_path, env)
        assert refused.returncode == 1
        assert "workbench login" in refused.stderr
        for command in commands:
            args = shlex.split(command)
            assert args[0] == "workbench", command
            if args[1] == "login":
                _login(args[1:], tmp_path, env)
                refresh_token = _expire_access_token(env)
                continue
            result = _workbench(args[1:], tmp_path, env)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            if args[1:3] == ["tenant", "list"]:
                assert "demo" in result.stdout
            if args[1:3] == ["rt", "query"]:
                assert "EM-" in result.stdout
            if args[1:3] == ["streams", "write"]:
                assert "wrote 1,000 points" in result.stdout
        # an explicit --url: the tenant registry over HTTP, as the logged-in demo user sees it
        listed = _workbench(
            ["--url", f"http://127.0.0.1:{port}", "--json", "tenant", "list"], tmp_path, env
        )
        assert listed.returncode == 0, listed.stderr
        assert [t["id"] for t in json.loads(listed.stdout)] == ["demo"]
        # the expired access token was renewed with the refresh token, which rotated
        assert _stored_login(env)["refreshToken"] != refresh_token
        points = (tmp_path / "points.csv").read_text().splitlines()
        assert points[0].startswith('"rtId","timeStamp",')
        assert len(points) == 1001
        assert re.match(r'"[0-9a-f]{24}","\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",', points[1])
        hourly = (tmp_path / "hourly.csv").read_text().splitlines()
        assert hourly[0].startswith('"rtId","bucket","voltageAvg","voltageMax"')
        assert len(hourly) >= 2 * 24
        assert "Demo.Energy/EnergyMeter" in (tmp_path / "meters.yaml").read_text()
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0, startup + rest
    assert re.search(r"stopping \.\.\.\n(.*\n)*stopped\n?$", rest), rest
    assert not (tmp_path / ".workbench" / "platform.json").exists()
