"""The process of one notebook run: ``python -m workbench.bots.runner RUN_DIR``.

It executes ``RUN_DIR/input.ipynb`` with papermill in a fresh kernel (``request.json`` names the
kernel and the parameters), writes ``output.ipynb`` as cells finish, the kernel's output to
``run.log`` and the outcome to ``result.json``. A watcher thread follows the kernel process
(its child): when the kernel dies before the last cell finished — SIGKILL from the OOM killer,
a crash — it writes the signal and the kernel's last memory use to ``result.json`` and ends
this process at once, because papermill can wait forever on a kernel that is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["EXIT_KERNEL_DIED", "main"]

EXIT_KERNEL_DIED = 70
_SETUP_TAG = "workbench-bot-setup"
SETUP_SOURCE = "import workbench.bots.context as _wb_bot_context\n_wb_bot_context.attach(globals())"


def _write_result(run_dir: Path, result: dict[str, Any]) -> None:
    tmp = run_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
    os.replace(tmp, run_dir / "result.json")


class KernelWatch:
    """Follows the kernel child process: memory samples, and its death before the end."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.finished = threading.Event()
        self.kernel_pid: int | None = None
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


def _engine(watch: KernelWatch) -> Any:
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
            return WatchedClient(nb_man, **final).execute()

    return WorkbenchEngine


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    import nbformat
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="papermill")
    run_dir = Path((argv or sys.argv[1:])[0]).resolve()
    request = json.loads((run_dir / "request.json").read_text(encoding="utf-8"))
    notebook = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    setup = nbformat.v4.new_code_cell(SETUP_SOURCE, metadata={"tags": [_SETUP_TAG]})
    setup.metadata["jupyter"] = {"source_hidden": True}
    notebook.cells.insert(0, setup)
    nbformat.write(notebook, run_dir / "input.ipynb")
    watch = KernelWatch(run_dir)
    watch.start()
    papermill_engines.register("workbench", _engine(watch))
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
