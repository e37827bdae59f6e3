"""The Celery executor: bot runs' attempts execute on bot workers (``workbench serve
bot-worker``) through the platform's RabbitMQ.

The Bot Service keeps what it does for every executor (token, retries with backoff, history,
HTML, alerts: :class:`~workbench.bots.runs.BotRunner`); each attempt is one message to the
workers' queue. A thread per run in flight waits for its result on a reply queue of its own
(Celery's ``rpc://`` backend, per thread). A run no worker takes within ``worker_wait_s`` fails
(``no-worker``); one whose worker goes silent past the run's timeout fails (``worker-lost``);
the service stopping stops the runs on the workers (``service-stopped``), as the local executor
does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.bots.celery_app import EXECUTE_TASK, STOP_RUNS_COMMAND, celery_app, unpack_run_files
from workbench.bots.execution import SERVICE_STOPPED, RunOutcome
from workbench.bots.executor import Executor

if TYPE_CHECKING:
    from workbench.bots.history import RunRecord
    from workbench.bots.runs import BotRunner, RunRequest

__all__ = ["CeleryExecutor"]

#: how long past a run's timeout the service waits for a worker's answer before it gives up
GRACE_S = 60.0


class CeleryExecutor(Executor):
    """See the module docstring."""

    name = "celery"

    def __init__(
        self,
        runner: BotRunner,
        broker_url: str,
        *,
        queue: str = "workbench.bots",
        workers: int = 4,
        worker_wait_s: float = 600.0,
    ) -> None:
        self.runner = runner
        self.queue = queue
        self.worker_wait_s = worker_wait_s
        self.app = celery_app(broker_url, queue)
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bot-dispatch")
        self._stopping = threading.Event()

    def submit(self, request: RunRequest) -> Future[RunRecord]:
        return self.pool.submit(self.runner.run, request, self.execute)

    def shutdown(self) -> None:
        self._stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.app.close()

    def execute(
        self,
        notebook: Mapping[str, Any],
        run_dir: Path,
        *,
        home: Path,
        tenant: str,
        env: Mapping[str, str],
        parameters: Mapping[str, Any] | None = None,
        timeout: float = 600.0,
        memory_bytes: int | None = None,
    ) -> RunOutcome:
        """One attempt on a worker (``execute_notebook``'s signature); the run's files land
        in ``run_dir``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "notebook.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        payload = {
            "notebook": dict(notebook),
            "tenant": tenant,
            "env": dict(env),
            "parameters": dict(parameters or {}),
            "timeout": timeout,
            "memoryBytes": memory_bytes,
        }
        queued = time.time()
        if self._stopping.is_set():
            return RunOutcome(
                "failed", queued, time.time(), error=SERVICE_STOPPED, reason="service-stopped"
            )
        result = self.app.send_task(EXECUTE_TASK, args=[payload], queue=self.queue)
        try:
            value = self._wait(result, timeout, queued)
        finally:
            # runs are minutes apart: no reply connection is kept open per dispatch thread
            self.app.backend.result_consumer.close()
        if isinstance(value, RunOutcome):
            return value
        if not isinstance(value, dict) or "outcome" not in value:
            return RunOutcome(
                "failed",
                queued,
                time.time(),
                error=f"the bot worker failed to execute the run: {value!r}",
                reason="worker-error",
            )
        if value.get("files"):
            unpack_run_files(value["files"], run_dir)
        outcome = RunOutcome(**value["outcome"])
        outcome.details["worker"] = value.get("worker")
        return outcome

    def _wait(self, result: Any, timeout: float, queued: float) -> Any:
        from celery.exceptions import TimeoutError as CeleryTimeout

        started: list[float] = []

        def on_message(meta: Mapping[str, Any]) -> None:
            if meta.get("status") == "STARTED" and not started:
                started.append(time.monotonic())

        taken_by = time.monotonic() + self.worker_wait_s
        while True:
            if self._stopping.is_set():
                return self._take_back(result.id, queued, "service-stopped", SERVICE_STOPPED)
            try:
                return result.get(timeout=1.0, propagate=False, on_message=on_message)
            except CeleryTimeout:
                pass
            now = time.monotonic()
            if not started and now > taken_by:
                return self._take_back(
                    result.id,
                    queued,
                    "no-worker",
                    f"no bot worker took the run within {self.worker_wait_s:g} s: start one "
                    f"with `workbench serve bot-worker` on the queue {self.queue!r} (or raise "
                    "WORKBENCH_BOT_WORKER_WAIT_S)",
                )
            if started and now > started[0] + timeout + GRACE_S:
                return self._take_back(
                    result.id,
                    queued,
                    "worker-lost",
                    f"the bot worker running it did not answer within the run's timeout "
                    f"({timeout:g} s) and {GRACE_S:g} s more; it was probably stopped or lost "
                    "its connection",
                )

    def _take_back(self, task_id: str, queued: float, reason: str, error: str) -> RunOutcome:
        """Stop the run on the workers and fail it with ``reason``."""
        self._stop_on_workers(task_id)
        return RunOutcome("failed", queued, time.time(), error=error, reason=reason)

    def _stop_on_workers(self, task_id: str) -> None:
        """Take the run back: not started yet (revoke) or going on a worker (stop command)."""
        self.app.control.revoke(task_id)
        self.app.control.broadcast(STOP_RUNS_COMMAND, arguments={"task_ids": [task_id]})
