"""The sandboxed worker process of ``ExecutePython@1``: one process per execution, never the
adapter's own.

The worker (:mod:`.python_worker`, standard library only) runs under bubblewrap with every
namespace unshared (no network: its own empty loopback; its own PIDs), an empty environment, a
read-only view of the system libraries and the interpreter only (no data directory, no other
tenant's files, no credentials), a private ``/tmp``, and resource limits on memory, CPU seconds
and file size; the adapter kills it at the wall-clock timeout. Data goes in and out as JSON over
its stdin and stdout.

Where bubblewrap cannot run, a run is refused, unless ``WORKBENCH_EXECUTE_PYTHON_ALLOW_UNSANDBOXED``
is true: then the worker is a plain subprocess (still its own process with the same limits and an
empty environment, but with the machine's network and files).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.settings import Settings, current_settings

__all__ = [
    "SandboxFailure",
    "SandboxLimits",
    "SandboxSettings",
    "SandboxUnavailable",
    "run_sandboxed",
]

_WORKER = Path(__file__).with_name("python_worker.py")


@dataclass(frozen=True)
class SandboxSettings:
    """What the adapter allows its workers: the ``execute_python_*`` fields of
    :class:`~workbench.settings.Settings` (``WORKBENCH_EXECUTE_PYTHON_<NAME>``)."""

    bwrap: str = "/usr/bin/bwrap"
    allow_unsandboxed: bool = False
    max_timeout_seconds: float = 300.0
    max_memory_mb: int = 2048
    max_output_bytes: int = 16 * 1024 * 1024
    file_size_mb: int = 64

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SandboxSettings:
        """The sandbox part of ``settings`` (default: read from the environment now)."""
        settings = settings or current_settings()
        return cls(
            bwrap=settings.execute_python_bwrap,
            allow_unsandboxed=settings.execute_python_allow_unsandboxed,
            max_timeout_seconds=settings.execute_python_max_timeout_seconds,
            max_memory_mb=settings.execute_python_max_memory_mb,
            max_output_bytes=settings.execute_python_max_output_bytes,
            file_size_mb=settings.execute_python_file_size_mb,
        )


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float = 10.0
    memory_mb: int = 256
    cpu_seconds: int = 10


class SandboxUnavailable(WorkbenchError):
    """Bubblewrap cannot run here and no setting allows an unsandboxed worker."""

    code = "SANDBOX_UNAVAILABLE"


class SandboxFailure(WorkbenchError):
    """The code failed: it raised, ran out of time, memory or CPU, crashed, or gave no JSON.
    ``kind`` says which (exception, timeout, memory, cpu, crash, result)."""

    code = "SANDBOX_FAILURE"

    def __init__(self, kind: str, message: str, output: str = "") -> None:
        self.kind = kind
        self.output = output
        super().__init__(message)


def _interpreter() -> tuple[str, str]:
    """The real interpreter (not a venv's link to it) and the prefix holding its stdlib."""
    return os.path.realpath(sys.executable), sys.base_prefix


def _bwrap_command(settings: SandboxSettings, python: str, prefix: str) -> list[str]:
    command = [
        settings.bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--ro-bind", "/usr", "/usr",
        "--ro-bind-try", "/lib", "/lib",
        "--ro-bind-try", "/lib64", "/lib64",
        "--ro-bind-try", "/bin", "/bin",
        "--ro-bind", prefix, prefix,
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--chdir", "/tmp",
    ]  # fmt: skip
    if not python.startswith(prefix):
        command += ["--ro-bind", python, python]
    return command


def _worker_args(python: str) -> list[str]:
    return [python, "-I", "-S", "-c", _WORKER.read_text(encoding="utf-8")]


async def _spawn(command: list[str], cwd: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={},
        cwd=cwd,
        start_new_session=True,
    )


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _read_answer(process: asyncio.subprocess.Process, limit: int) -> bytes:
    """The worker's stdout; a worker writing more than ``limit`` bytes is killed."""
    assert process.stdout is not None
    chunks: list[bytes] = []
    size = 0
    while chunk := await process.stdout.read(65536):
        size += len(chunk)
        if size > limit:
            _kill(process)
            raise SandboxFailure(
                "result",
                f"the answer is larger than {limit} bytes "
                "(WORKBENCH_EXECUTE_PYTHON_MAX_OUTPUT_BYTES)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_tail(process: asyncio.subprocess.Process, limit: int = 4000) -> bytes:
    """The last ``limit`` bytes of the worker's stderr."""
    assert process.stderr is not None
    tail = b""
    while chunk := await process.stderr.read(65536):
        tail = (tail + chunk)[-limit:]
    return tail


async def _execute(
    command: list[str], request: bytes, limits: SandboxLimits, settings: SandboxSettings
) -> tuple[int, bytes, bytes, bool]:
    """Run the worker; (return code, stdout, stderr tail, timed out)."""
    with tempfile.TemporaryDirectory(prefix="wb-python-") as cwd:
        process = await _spawn(command, cwd)
        assert process.stdin is not None
        try:
            async with asyncio.timeout(limits.timeout_seconds):
                process.stdin.write(request)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await process.stdin.drain()
                process.stdin.close()
                out, err = await asyncio.gather(
                    _read_answer(process, settings.max_output_bytes), _read_tail(process)
                )
                code = await process.wait()
        except TimeoutError:
            _kill(process)
            await process.wait()
            return -signal.SIGKILL, b"", b"", True
        except SandboxFailure:
            await process.wait()
            raise
        except BaseException:
            _kill(process)  # cancelled: the worker never outlives its execution
            raise
        return code, out, err, False


def _failure(code: int, err: bytes, limits: SandboxLimits) -> SandboxFailure:
    tail = err.decode("utf-8", errors="replace").strip()[-1000:]
    detail = f": {tail}" if tail else ""
    # a plain subprocess reports a signal as -N, bwrap as 128 + N
    number = -code if code < 0 else code - 128 if code > 128 else None
    if number == signal.SIGXCPU:
        return SandboxFailure(
            "cpu", f"the code used more than its {limits.cpu_seconds} s of CPU (cpuLimitSeconds)"
        )
    if number is not None:
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        return SandboxFailure("crash", f"the worker crashed (signal {name}){detail}")
    return SandboxFailure(
        "crash", f"the worker ended with exit code {code} without an answer{detail}"
    )


async def run_sandboxed(
    code: str, data: Any, limits: SandboxLimits, settings: SandboxSettings | None = None
) -> tuple[Any, str]:
    """Run ``code`` with ``data`` bound in a sandboxed worker; ``(result, printed output)``.

    Raises :class:`SandboxUnavailable` (no sandbox and none allowed) or
    :class:`SandboxFailure`."""
    settings = settings or SandboxSettings.from_settings()
    python, prefix = _interpreter()
    request = json.dumps(
        {
            "code": code,
            "data": data,
            "limits": {
                "memoryBytes": limits.memory_mb * 1024 * 1024,
                "cpuSeconds": limits.cpu_seconds,
                "fileBytes": settings.file_size_mb * 1024 * 1024,
            },
        },
        default=str,
    ).encode("utf-8")
    unavailable = None
    if not os.access(settings.bwrap, os.X_OK):
        unavailable = f"{settings.bwrap} is not an executable (install bubblewrap)"
    else:
        command = _bwrap_command(settings, python, prefix) + _worker_args(python)
        code_, out, err, timed_out = await _execute(command, request, limits, settings)
        if not out and not timed_out and err.startswith(b"bwrap:"):
            unavailable = err.decode("utf-8", errors="replace").strip()
    if unavailable is not None:
        if not settings.allow_unsandboxed:
            raise SandboxUnavailable(
                f"ExecutePython@1 runs code only in a sandbox, and bubblewrap cannot run here: "
                f"{unavailable}. Install bubblewrap (and allow unprivileged user namespaces), or "
                "set WORKBENCH_EXECUTE_PYTHON_ALLOW_UNSANDBOXED=true on this adapter to run the "
                "code in a plain subprocess, with the machine's network and files"
            )
        code_, out, err, timed_out = await _execute(_worker_args(python), request, limits, settings)
    if timed_out:
        raise SandboxFailure(
            "timeout",
            f"the code did not finish within {limits.timeout_seconds:g} s (timeoutSeconds); "
            "the worker was stopped",
        )
    if not out:
        raise _failure(code_, err, limits)
    try:
        answer = json.loads(out)
    except ValueError as exc:
        raise SandboxFailure("result", f"the worker's answer is not JSON: {exc}") from exc
    if answer.get("ok"):
        return answer.get("result"), str(answer.get("output") or "")
    kind, error, output = answer.get("kind"), answer.get("error"), str(answer.get("output") or "")
    if kind == "memory":
        raise SandboxFailure(
            "memory", f"the code ran out of its {limits.memory_mb} MB (memoryLimitMb)", output
        )
    if kind == "result":
        raise SandboxFailure(
            "result", f"the result cannot be written as JSON ({error}); leave JSON values", output
        )
    line = f" at line {answer['line']}" if answer.get("line") else ""
    raise SandboxFailure("exception", f"the code raised {error}{line}", output)
