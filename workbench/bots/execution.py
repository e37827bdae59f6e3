"""Run one notebook in a process of its own: the step every bot run and validation shares.

:func:`execute_notebook` prepares a run directory, starts ``python -m workbench.bots.runner``
(papermill in a fresh kernel of the tenant kernel spec, see :mod:`workbench.bots.runner`) in a
new session with the given environment, waits for it with a timeout (killing the runner and
its kernel when it is exceeded) and returns a :class:`RunOutcome`: status, error, times, the
executed notebook rendered as HTML, and the outputs the notebook declared.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.bots.context import KERNEL_ENV_FILE, RUN_DIR_VARIABLE, read_outputs
from workbench.bots.kernel_dir import kernel_path

if TYPE_CHECKING:
    from workbench.bots.kernel_pool import KernelPool

__all__ = [
    "SERVICE_STOPPED",
    "RunOutcome",
    "execute_notebook",
    "kernel_path",
    "render_html",
    "stop_all_runs",
    "stop_run",
]

#: the error of a run stopped because its service stopped (reason ``service-stopped``)
SERVICE_STOPPED = "the Bot Service stopped while the run was going; run it again"

#: runner processes of this process's runs (stopped together when the service stops)
_ACTIVE: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
_ACTIVE_LOCK = threading.Lock()
_STOPPED: set[int] = set()


def stop_all_runs() -> int:
    """Kill every run of this process (runner and kernel); returns how many. Their records
    end ``failed`` saying the service stopped."""
    with _ACTIVE_LOCK:
        active = list(_ACTIVE.values())
        _STOPPED.update(process.pid for process, _ in active)
    for process, run_dir in active:
        _kill_tree(process, run_dir)
    return len(active)


def stop_run(run_dir: Path) -> bool:
    """Kill the run of ``run_dir`` if it is going here (it ends ``failed``,
    ``service-stopped``); whether it was."""
    target = run_dir.resolve()
    with _ACTIVE_LOCK:
        found = [(p, d) for p, d in _ACTIVE.values() if d == target]
        _STOPPED.update(p.pid for p, _ in found)
    for process, folder in found:
        _kill_tree(process, folder)
    return bool(found)


@dataclass
class RunOutcome:
    """What a run came to. ``status``: succeeded, failed or timed-out."""

    status: str
    started: float
    finished: float
    error: str | None = None
    reason: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _limits(memory_bytes: int | None) -> Any:
    if memory_bytes is None:
        return None

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


def _kill_tree(process: subprocess.Popen[bytes], run_dir: Path) -> None:
    """SIGKILL the runner's session and the kernel (which runs in a session of its own)."""
    pid_file = run_dir / "kernel.pid"
    if pid_file.is_file():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def execute_notebook(
    notebook: Mapping[str, Any],
    run_dir: Path,
    *,
    home: Path,
    tenant: str,
    env: Mapping[str, str],
    parameters: Mapping[str, Any] | None = None,
    timeout: float = 600.0,
    memory_bytes: int | None = None,
    pool: KernelPool | None = None,
) -> RunOutcome:
    """Execute ``notebook`` in ``run_dir`` (created) in a fresh kernel; see the module doc.

    ``env`` is added to the kernel's environment (``WORKBENCH_TENANT`` and the API URL and
    token, or the data directory); nothing of this process's credentials is passed on beyond
    what ``env`` and the inherited environment hold. With a ``pool`` the kernel is one of its
    pre-started ones (never used before), which takes ``env`` from the run directory."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "notebook.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    from workbench.notebook.kernelspec import kernel_name

    request = {
        "kernel": kernel_name(tenant),
        "parameters": dict(parameters or {}),
        "memoryBytes": memory_bytes,
    }
    (run_dir / "request.json").write_text(json.dumps(request, default=str), encoding="utf-8")
    run_env = {**env, "WORKBENCH_TENANT": tenant, RUN_DIR_VARIABLE: str(run_dir)}
    started = time.time()
    standby = pool.take(tenant) if pool is not None else None
    if standby is not None:
        (run_dir / "work").mkdir(exist_ok=True)
        descriptor = os.open(run_dir / KERNEL_ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(run_env, out)
        process = standby.process
        standby.assign(run_dir)
    else:
        jupyter = kernel_path(home, tenant)
        child_env = {
            **os.environ,
            **run_env,
            "JUPYTER_PATH": os.pathsep.join(
                p for p in (str(jupyter), os.environ.get("JUPYTER_PATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
        with open(run_dir / "runner.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "workbench.bots.runner", str(run_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                cwd=str(run_dir),
                start_new_session=True,
                preexec_fn=_limits(memory_bytes),  # noqa: PLW1509 - only setrlimit, no locks
            )
    try:
        return _wait(process, run_dir, started, timeout)
    finally:
        if pool is not None:
            pool.warm(tenant)  # replace the kernel this run used (or start the first ones)


def _wait(
    process: subprocess.Popen[bytes], run_dir: Path, started: float, timeout: float
) -> RunOutcome:
    """The outcome of the runner ``process`` of ``run_dir`` (killed after ``timeout``)."""
    with _ACTIVE_LOCK:
        _ACTIVE[process.pid] = (process, run_dir)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process, run_dir)
        return RunOutcome(
            "timed-out",
            started,
            time.time(),
            error=f"the run exceeded its timeout of {timeout:g} s and was stopped "
            "(raise the bot's --timeout if it needs longer)",
            reason="timeout",
            outputs=read_outputs(run_dir),
        )
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(process.pid, None)
    finished = time.time()
    if code != 0:
        _kill_leftover_kernel(run_dir)
    with _ACTIVE_LOCK:
        stopped = process.pid in _STOPPED
        _STOPPED.discard(process.pid)
    if stopped:
        return RunOutcome(
            "failed",
            started,
            finished,
            error=SERVICE_STOPPED,
            reason="service-stopped",
            outputs=read_outputs(run_dir),
        )
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        log_file = run_dir / "runner.log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.is_file() else ""
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
        return RunOutcome(
            "failed",
            started,
            finished,
            error=f"the runner process ended with {how} before reporting: {tail.strip()}",
            reason="runner-died",
            outputs=read_outputs(run_dir),
        )
    result = json.loads(result_file.read_text(encoding="utf-8"))
    return RunOutcome(
        str(result["status"]),
        started,
        finished,
        error=result.get("error"),
        reason=result.get("reason"),
        outputs=read_outputs(run_dir),
        details={k: v for k, v in result.items() if k not in ("status", "error", "reason")},
    )


def _kill_leftover_kernel(run_dir: Path) -> None:
    """A runner that ended early (dead kernel) leaves no kernel behind."""
    pid_file = run_dir / "kernel.pid"
    if pid_file.is_file():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


_EXPORTER_LOCK = threading.Lock()


@functools.cache
def _html_exporter() -> Any:
    """One exporter per process: building its templates costs seconds, rendering does not."""
    from nbconvert import HTMLExporter

    return HTMLExporter()


def render_html(run_dir: Path) -> Path | None:
    """``output.html``: the executed notebook rendered by nbconvert (None without output)."""
    source = run_dir / "output.ipynb"
    if not source.is_file():
        return None
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    notebook.cells = [
        c for c in notebook.cells if "workbench-bot-setup" not in c.metadata.get("tags", [])
    ]
    with _EXPORTER_LOCK:
        body, _ = _html_exporter().from_notebook_node(notebook)
    target = run_dir / "output.html"
    target.write_text(body, encoding="utf-8")
    return target
