"""The spawner's start-up helpers (no hub needed)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

pytest.importorskip("jupyterhub", reason="the hub extra is not installed")

from workbench.hub.spawner import SINGLEUSER_LAUNCHER, wait_listening


def test_wait_listening_returns_once_the_port_accepts() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert asyncio.run(wait_listening("127.0.0.1", port, alive=lambda: True, timeout=5))


def test_wait_listening_gives_up_when_the_process_is_gone_or_late() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        assert not asyncio.run(wait_listening("127.0.0.1", port, alive=lambda: False, timeout=5))
        assert not asyncio.run(wait_listening("127.0.0.1", port, alive=lambda: True, timeout=0.2))


def test_the_launcher_runs_jupyterhub_singleuser_without_rfc3987_syntax() -> None:
    code = SINGLEUSER_LAUNCHER.replace(
        "from jupyterhub.singleuser import main; sys.exit(main())",
        "import jsonschema, jupyterhub.singleuser; "
        "print(sys.modules['rfc3987_syntax'] is None, callable(jupyterhub.singleuser.main))",
    )
    assert code != SINGLEUSER_LAUNCHER
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
