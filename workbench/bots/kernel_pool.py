"""Pre-started kernels per tenant, so a run does not wait for a kernel to start.

A :class:`KernelPool` keeps ``size`` standby runners per tenant kernel spec: each is
``python -m workbench.bots.runner --standby KERNEL`` with its kernel already started (and
papermill imported). :meth:`KernelPool.take` hands one to a run, and its replacement starts
once the run is over; a standby serves exactly one run and ends with it, so a kernel never
serves two runs.
Standbys of a tenant start when :meth:`KernelPool.warm` is first called for it (the scheduler
does that for tenants with deployed bots; a run of a tenant without standbys starts its own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KernelPool", "Standby"]

log = logging.getLogger("workbench.bots.kernel_pool")

#: how long a run waits for a standby that is still starting (it is always nearer to ready
#: than a kernel the run would start itself) before it starts its own kernel
READY_WAIT_S = 120.0


@dataclass
class Standby:
    """One pre-started runner and its kernel."""

    kernel: str
    process: subprocess.Popen[bytes]
    ready: threading.Event = field(default_factory=threading.Event)
    kernel_pid: int | None = None

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        if self.kernel_pid is None:
            return True  # still starting
        import psutil

        try:
            return bool(psutil.Process(self.kernel_pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def assign(self, run_dir: Path) -> None:
        """Give the standby its run (the runner reads ``run_dir`` and starts executing)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{run_dir}\n".encode())
        self.process.stdin.close()

    def kill(self) -> None:
        if self.kernel_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.kernel_pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


class KernelPool:
    """See the module docstring. ``env`` is the standby runners' environment."""

    def __init__(self, home: Path, size: int = 1, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.size = max(0, size)
        self.env = dict(env if env is not None else os.environ)
        self._standby: dict[str, list[Standby]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def warm(self, tenant: str) -> None:
        """Start standbys of ``tenant`` until it has ``size`` of them."""
        if self.size == 0:
            return
        from workbench.notebook.kernelspec import kernel_name

        kernel = kernel_name(tenant)
        with self._lock:
            if self._closed:
                return
            found = []
            for standby in self._standby.get(kernel, []):
                if standby.alive():
                    found.append(standby)
                else:
                    standby.kill()
            while len(found) < self.size:
                found.append(self._start(tenant, kernel))
            self._standby[kernel] = found

    def take(self, tenant: str) -> Standby | None:
        """A ready standby of ``tenant`` for one run (None: the caller starts its own kernel).
        Call :meth:`warm` when the run is over: the replacement starts after the run, so it
        does not take the CPU the run needs."""
        if self.size == 0:
            return None
        from workbench.notebook.kernelspec import kernel_name

        kernel = kernel_name(tenant)
        while True:
            with self._lock:
                waiting = self._standby.get(kernel, [])
                standby = waiting.pop(0) if waiting else None
            if standby is None:
                return None
            ready = standby.ready.wait(READY_WAIT_S)
            if ready and standby.kernel_pid is not None and standby.alive():
                return standby
            if not ready and standby.alive():  # slow (a loaded machine): keep it for later
                with self._lock:
                    self._standby.setdefault(kernel, []).append(standby)
                return None
            log.warning("a standby kernel of %s ended before its run; trying the next", tenant)
            standby.kill()

    def wait_ready(self, tenant: str, timeout: float = 120.0) -> bool:
        """Block until ``tenant`` has ``size`` started standbys (benchmarks, tests)."""
        from workbench.notebook.kernelspec import kernel_name

        self.warm(tenant)
        with self._lock:
            standbys = list(self._standby.get(kernel_name(tenant), []))
        return all(s.ready.wait(timeout) and s.kernel_pid is not None for s in standbys)

    def _start(self, tenant: str, kernel: str) -> Standby:
        from workbench.bots.kernel_dir import kernel_path

        folder = self.home / "bots" / "pool"
        folder.mkdir(parents=True, exist_ok=True)
        jupyter = kernel_path(self.home, tenant)
        env = {
            **self.env,
            "JUPYTER_PATH": os.pathsep.join(
                p for p in (str(jupyter), self.env.get("JUPYTER_PATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
        with open(folder / f"{kernel}.log", "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "workbench.bots.runner", "--standby", kernel],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                cwd=str(folder),
                start_new_session=True,
            )
        standby = Standby(kernel, process)
        threading.Thread(
            target=self._wait_ready, args=(standby,), daemon=True, name="bot-standby"
        ).start()
        return standby

    @staticmethod
    def _wait_ready(standby: Standby) -> None:
        assert standby.process.stdout is not None
        line = standby.process.stdout.readline().decode(errors="replace").split()
        if line[:1] == ["ready"] and len(line) == 2:
            standby.kernel_pid = int(line[1])
        # without "ready" it ended before its kernel started: take() moves on to the next
        standby.ready.set()
        standby.process.stdout.close()

    def close(self) -> None:
        """Stop every standby (runs already handed out are not affected)."""
        with self._lock:
            self._closed = True
            standbys = [s for found in self._standby.values() for s in found]
            self._standby.clear()
        for standby in standbys:
            standby.kill()
