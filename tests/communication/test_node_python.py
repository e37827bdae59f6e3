"""ExecutePython@1: user code in a sandboxed worker process (bubblewrap, no network, limits on
time, memory and CPU), never in the adapter's process; every failure names pipeline, node and
cause."""

from __future__ import annotations

import asyncio
import os
import socket
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from workbench.communication import run_pipeline
from workbench.communication.nodes.python_sandbox import SandboxSettings
from workbench.testing.servers import in_ci

BWRAP = SandboxSettings.from_settings().bwrap


@pytest.fixture(autouse=True)
def _needs_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WORKBENCH_EXECUTE_PYTHON_"):
            monkeypatch.delenv(name)
    if not os.access(BWRAP, os.X_OK):
        message = f"needs bubblewrap at {BWRAP} (apt-get install bubblewrap)"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)


def _run(code: str, data: Any, **properties: Any) -> Any:
    extra = "".join(f"    {key}: {value}\n" for key, value in properties.items())
    definition = (
        "triggers: [{type: FromExecutePipelineCommand@1}]\n"
        "transformations:\n"
        "  - type: ExecutePython@1\n"
        "    path: $.input\n"
        "    targetPath: $.output\n"
        f"{extra}"
        "    code: |\n" + textwrap.indent(textwrap.dedent(code).strip() + "\n", " " * 6)
    )
    return asyncio.run(run_pipeline(definition, data, name="scripted"))


def _failed(result: Any, *causes: str) -> str:
    assert result.status == "Failed", result.output
    error = str(result.error)
    assert error.startswith("pipeline 'scripted', transformations[0] (ExecutePython@1): "), error
    for cause in causes:
        assert cause in error, error
    return error


def test_code_transforms_the_data_in_another_process() -> None:
    code = """
        import os
        readings = [r for r in data["readings"] if r["ok"]]
        result = {
            "total": sum(r["kWh"] for r in readings),
            "meters": sorted({r["meter"] for r in readings}),
            "pid": os.getpid(),
        }
        print("kept", len(readings), "of", len(data["readings"]))
    """
    readings = [
        {"meter": "m2", "kWh": 1.5, "ok": True},
        {"meter": "m1", "kWh": 2.0, "ok": True},
        {"meter": "m3", "kWh": 99.0, "ok": False},
    ]
    result = _run(code, {"input": {"readings": readings}, "other": "kept"})
    assert result.status == "Completed", result.error
    out = result.output["output"]
    assert (out["total"], out["meters"]) == (3.5, ["m1", "m2"])
    assert out["pid"] != os.getpid()
    assert result.output["other"] == "kept"  # the rest of the context is untouched
    assert result.printed == ["kept 2 of 3"]  # what it printed is the execution's output
    # without a result the (changed) data is written back
    changed = _run("data.append(4)", {"input": [1, 2, 3]})
    assert changed.output["output"] == [1, 2, 3, 4]


def test_a_run_past_its_timeout_is_stopped() -> None:
    result = _run("while True:\n    pass", {"input": 1}, timeoutSeconds=1, cpuLimitSeconds=30)
    _failed(result, "did not finish within 1 s (timeoutSeconds)", "worker was stopped")


def test_cpu_limit() -> None:
    result = _run("while True:\n    pass", {"input": 1}, timeoutSeconds=30, cpuLimitSeconds=1)
    _failed(result, "more than its 1 s of CPU (cpuLimitSeconds)")


def test_memory_limit() -> None:
    result = _run("block = bytearray(400 * 1024 * 1024)", {"input": 1}, memoryLimitMb=128)
    _failed(result, "ran out of its 128 MB (memoryLimitMb)")
    # the same allocation within a larger limit succeeds: the limit is what stopped it
    fits = _run("block = bytearray(100 * 1024 * 1024)\nresult = len(block)", {"input": 1})
    assert fits.status == "Completed", fits.error
    assert fits.output["output"] == 100 * 1024 * 1024


@pytest.fixture
def listener() -> Iterator[tuple[int, list[Any]]]:
    """A TCP server on loopback that records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[Any] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            accepted.append(peer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()
        thread.join(5)


@pytest.mark.attack
def test_the_code_has_no_network(listener: tuple[int, list[Any]]) -> None:
    port, accepted = listener
    probe = socket.create_connection(("127.0.0.1", port), timeout=5)  # reachable from here
    probe.close()
    code = f"""
        import socket
        socket.create_connection(("127.0.0.1", {port}), timeout=3)
    """
    _failed(_run(code, {"input": 1}), "the code raised ConnectionRefusedError", "at line 2")
    dns = _run("import socket\nsocket.getaddrinfo('example.com', 80)", {"input": 1})
    _failed(dns, "the code raised gaierror")
    assert len(accepted) == 1  # only the probe reached the server


@pytest.mark.attack
def test_the_code_sees_no_platform_files_nor_environment(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "entity-secrets.key"
    secret.write_text("key")
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "adapter-token")
    code = f"""
        import os
        result = {{"env": dict(os.environ), "exists": os.path.exists({str(secret)!r}),
                  "cwd": os.listdir(".")}}
    """
    result = _run(code, {"input": 1})
    assert result.status == "Completed", result.error
    seen = result.output["output"]
    assert set(seen["env"]) <= {"PWD", "LC_CTYPE"}, seen["env"]  # set by bwrap and Python
    assert (seen["exists"], seen["cwd"]) == (False, [])


def test_an_exception_is_reported_with_its_line() -> None:
    code = """
        total = sum(data)
        ratio = total / 0
    """
    error = _failed(_run(code, {"input": [1, 2]}), "ZeroDivisionError: division by zero")
    assert "at line 2" in error
    _failed(_run("result = (", {"input": 1}), "the code raised SyntaxError")
    _failed(_run("result = {1, 2}", {"input": 1}), "cannot be written as JSON")
    crash = _run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", {"input": 1})
    _failed(crash, "the worker crashed (signal SIGSEGV)")


def test_without_bubblewrap_it_refuses_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_EXECUTE_PYTHON_BWRAP", "/nonexistent/bwrap")
    refused = _run("result = 1", {"input": 1})
    _failed(
        refused,
        "runs code only in a sandbox",
        "/nonexistent/bwrap",
        "WORKBENCH_EXECUTE_PYTHON_ALLOW_UNSANDBOXED=true",
    )
    monkeypatch.setenv("WORKBENCH_EXECUTE_PYTHON_ALLOW_UNSANDBOXED", "true")
    allowed = _run("import os\nresult = [data + 1, os.getpid()]", {"input": 1})
    assert allowed.status == "Completed", allowed.error
    assert allowed.output["output"][0] == 2
    assert allowed.output["output"][1] != os.getpid()  # still a process of its own
    # a CPU limit above the time limit, so that the time limit is what stops the loop
    timed_out = _run("while True:\n    pass", {"input": 1}, timeoutSeconds=1, cpuLimitSeconds=10)
    _failed(timed_out, "did not finish within 1 s")


def test_limits_above_the_adapters_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_EXECUTE_PYTHON_MAX_MEMORY_MB", "512")
    _failed(
        _run("result = 1", {"input": 1}, memoryLimitMb=1024),
        "property 'memoryLimitMb'",
        "limit of 512 MB (WORKBENCH_EXECUTE_PYTHON_MAX_MEMORY_MB)",
    )
