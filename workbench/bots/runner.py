"""The process of one notebook run: ``python -m workbench.bots.runner RUN_DIR``.

It executes ``RUN_DIR/input.ipynb`` with papermill in a fresh kernel (``request.json`` names the
kernel and the parameters), writes ``output.ipynb`` as cells finish, the kernel's output to
``run.log`` and the outcome to ``result.json``. A watcher thread follows the kernel process
(its child): when the kernel dies before the last cell finished — SIGKILL from the OOM killer,
a crash — it writes the signal and the kernel's last memory use to ``result.json`` and ends
this process at once, because papermill can wait forever on a kernel that is gone.

``python -m workbench.bots.runner --standby KERNEL`` is a pre-started runner of a
:class:`~workbench.bots.kernel_pool.KernelPool`: it starts its kernel at once, prints
``ready <kernel pid>``, and waits for one run directory on stdin; the run's environment reaches
the kernel through the setup cell (:func:`workbench.bots.context.prepare`). It serves that one
run and ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workbench.bots.context import RUN_DIR_VARIABLE

__all__ = ["EXIT_KERNEL_DIED", "main"]

EXIT_KERNEL_DIED = 70
_SETUP_TAG = "workbench-bot-setup"
SETUP_SOURCE = (
    "import workbench.bots.context as _wb_bot_context\n"
    "_wb_bot_context.prepare(globals(), {run_dir!r})"
)


def _write_result(run_dir: Path, result: dict[str, Any]) -> None:
    tmp = run_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
    os.replace(tmp, run_dir / "result.json")


class KernelWatch:
    """Follows the kernel child process: memory samples, and its death before the end."""

    def __init__(self, run_dir: Path, kernel_pid: int | None = None) -> None:
        self.run_dir = run_dir
        self.finished = threading.Event()
        self.kernel_pid: int | None = kernel_pid
        self.last_rss = 0
        self.peak_rss = 0

    def start(self) -> None:
        threading.Thread(target=self._watch, daemon=True, name="kernel-watch").start()

    def _find_kernel(self) -> int | None:
        import psutil

        for child in psutil.Process().children():
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    return int(child.pid)
            except psutil.Error:
                continue
        return None

    def _watch(self) -> None:
        import psutil

        while self.kernel_pid is None and not self.finished.is_set():
            self.kernel_pid = self._find_kernel()
            time.sleep(0.02)
        if self.kernel_pid is None:
            return
        (self.run_dir / "kernel.pid").write_text(str(self.kernel_pid), encoding="utf-8")
        process = psutil.Process(self.kernel_pid)
        while not self.finished.is_set():
            try:
                # WNOWAIT: look without reaping, so jupyter_client still collects its child
                info = os.waitid(os.P_PID, self.kernel_pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
                if not psutil.pid_exists(self.kernel_pid):
                    self._died(None, None)
                    return
            if info is not None:
                if self.finished.is_set():
                    return
                killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
                self._died(info.si_status if killed else None, None if killed else info.si_status)
                return
            try:
                rss = int(process.memory_info().rss)
                if rss:  # a zombie (killed, not yet reaped) reports 0
                    self.last_rss = rss
                    self.peak_rss = max(self.peak_rss, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def _died(self, signum: int | None, status: int | None) -> None:
        if signum is not None:
            how = f"killed by {signal.Signals(signum).name}"
        elif status is not None:
            how = f"exited with status {status}"
        else:
            how = "ended"
        mb = self.last_rss / 1e6
        reason = (
            f"the kernel died while the notebook ran: it was {how} "
            f"(last memory use {mb:.1f} MB; the OOM killer sends SIGKILL when a run exceeds "
            "the memory it may use)"
        )
        _write_result(
            self.run_dir,
            {
                "status": "failed",
                "reason": "kernel-died",
                "error": reason,
                "signal": signal.Signals(signum).name if signum is not None else None,
                "lastMemoryBytes": self.last_rss,
                "peakMemoryBytes": self.peak_rss,
            },
        )
        os._exit(EXIT_KERNEL_DIED)


def _engine(watch: KernelWatch, km: Any = None) -> Any:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine

    class WatchedClient(PapermillNotebookClient):  # type: ignore[misc]
        def papermill_execute_cells(self) -> None:
            try:
                super().papermill_execute_cells()
            finally:
                watch.finished.set()  # the kernel's shutdown after this is expected

    class WorkbenchEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            from papermill.utils import merge_kwargs, remove_args

            kwargs = remove_args(["input_path"], **kwargs)
            safe = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                safe,
                timeout=kwargs.get("execution_timeout") or kwargs.get("timeout"),
                startup_timeout=kwargs.get("start_timeout", 60),
                kernel_name=kernel_name,
                log_output=kwargs.get("log_output", False),
                stdout_file=kwargs.get("stdout_file"),
                stderr_file=kwargs.get("stderr_file"),
            )
            for key in ("execution_timeout", "start_timeout"):
                final.pop(key, None)
            if km is not None:
                final["km"] = km  # a pool's kernel, started before the run
            return WatchedClient(nb_man, **final).execute()

    return WorkbenchEngine


def standby(kernel: str) -> int:
    """A pool's runner: start the kernel, say ``ready``, run the one run stdin names."""
    import psutil
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    _imports()
    km = AsyncKernelManager(kernel_name=kernel)
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_TENANT", RUN_DIR_VARIABLE)}
    # the kernel's own output goes to the pool's log (this process's stdout says "ready")
    run_sync(km.start_kernel)(env=env, stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno())
    kernel_pid = int(km.provisioner.pid)  # type: ignore[union-attr]
    run_sync(_warm_kernel)(km)
    print(f"ready {kernel_pid}", flush=True)
    line = sys.stdin.readline().strip()
    if not line:  # the pool closed: no run for this kernel
        run_sync(km.shutdown_kernel)(now=True)
        return 0
    run_dir = Path(line)
    with open(run_dir / "runner.log", "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    request = json.loads((run_dir / "request.json").read_text(encoding="utf-8"))
    memory = request.get("memoryBytes")
    if memory:
        psutil.Process(kernel_pid).rlimit(psutil.RLIMIT_AS, (memory, memory))
    try:
        return run(run_dir, km=km, kernel_pid=kernel_pid)
    finally:
        with contextlib.suppress(OSError):
            os.kill(kernel_pid, signal.SIGKILL)


#: what binding ``wb`` and a first query import, loaded in a standby kernel ahead of its run
WARM_UP = (
    "import workbench, workbench.client.local, workbench.client.remote, "
    "workbench.bots.context, workbench.notebook.extension"
)


async def _warm_kernel(km: Any) -> None:
    """Import in the standby kernel what its run will need (no history, no output)."""
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        msg_id = client.execute(WARM_UP, silent=True, store_history=False)
        while True:
            reply = await client.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    finally:
        client.stop_channels()


def _imports() -> None:
    """What a run needs, imported before it (a pool's runner does this while it waits)."""
    import nbformat  # noqa: F401
    import papermill  # noqa: F401
    from papermill.engines import papermill_engines  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--standby"]:
        return standby(args[1])
    return run(Path(args[0]).resolve())


def run(run_dir: Path, *, km: Any = None, kernel_pid: int | None = None) -> int:
    """Execute the run of ``run_dir`` (see the module docstring); the exit status."""
    import logging
    import warnings

    import nbformat
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="papermill")
    request = json.loads((run_dir / "request.json").read_text(encoding="utf-8"))
    notebook = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    source = SETUP_SOURCE.format(run_dir=str(run_dir))
    setup = nbformat.v4.new_code_cell(source, metadata={"tags": [_SETUP_TAG]})
    setup.metadata["jupyter"] = {"source_hidden": True}
    notebook.cells.insert(0, setup)
    nbformat.write(notebook, run_dir / "input.ipynb")
    watch = KernelWatch(run_dir, kernel_pid)
    if kernel_pid is not None:
        (run_dir / "kernel.pid").write_text(str(kernel_pid), encoding="utf-8")
    watch.start()
    papermill_engines.register("workbench", _engine(watch, km))
    work = run_dir / "work"
    work.mkdir(exist_ok=True)
    began = time.time()
    with open(run_dir / "run.log", "a", encoding="utf-8") as log:
        try:
            papermill.execute_notebook(
                str(run_dir / "input.ipynb"),
                str(run_dir / "output.ipynb"),
                parameters=request.get("parameters") or {},
                kernel_name=request["kernel"],
                language="python",
                engine_name="workbench",
                progress_bar=False,
                log_output=False,
                stdout_file=log,
                stderr_file=log,
                cwd=str(work),
                start_timeout=int(request.get("startTimeout", 60)),
            )
        except PapermillExecutionError as exc:
            watch.finished.set()
            _write_result(
                run_dir,
                {
                    "status": "failed",
                    "reason": "cell-error",
                    "error": f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}",
                    "seconds": time.time() - began,
                    "peakMemoryBytes": watch.peak_rss,
                },
            )
            return 1
        except Exception as exc:
            # nbclient may notice a dead kernel first: give the watcher the time to report
            # how it died (it ends this process when it does)
            time.sleep(0.5)
            watch.finished.set()
            _write_result(
                run_dir,
                {
                    "status": "failed",
                    "reason": "runner-error",
                    "error": f"{type(exc).__name__}: {exc}",
                    "seconds": time.time() - began,
                },
            )
            return 1
    watch.finished.set()
    _write_result(
        run_dir,
        {"status": "succeeded", "seconds": time.time() - began, "peakMemoryBytes": watch.peak_rss},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
