"""The Celery application the Bot Service and its workers share, and the run files it carries.

One task, ``workbench.bots.execute``: execute one attempt of a bot run on a worker
(:mod:`workbench.bots.worker`) and return the :class:`~workbench.bots.execution.RunOutcome`
with the run's files (executed notebook, logs, outputs, artifacts) packed as a base64 tar.gz,
so workers need no shared data directory. Results come back over RabbitMQ (``rpc://``: each
sending thread has a reply queue of its own). Messages are JSON.
"""

from __future__ import annotations

import base64
import contextlib
import io
import tarfile
from pathlib import Path
from typing import Any

from celery import Celery
from celery.backends.rpc import ResultConsumer, RPCBackend

__all__ = [
    "EXECUTE_TASK",
    "STOP_RUNS_COMMAND",
    "celery_app",
    "pack_run_files",
    "unpack_run_files",
]

EXECUTE_TASK = "workbench.bots.execute"
#: the worker's remote-control command that kills runs (by task id) the service gives up on
STOP_RUNS_COMMAND = "workbench_stop_runs"
#: files of a run directory the worker sends back (and nothing it got from the service)
_KEPT = ("output.ipynb", "run.log", "runner.log", "outputs.jsonl", "result.json", "artifacts")
#: the largest packed result (RabbitMQ refuses messages above 128 MB by default)
MAX_RESULT_BYTES = 64 * 2**20


class QuietResultConsumer(ResultConsumer):  # type: ignore[misc]
    """Celery's ``rpc://`` result consumer, except that a wait with nothing to read is not a
    lost connection: on Python 3.10+ ``socket.timeout`` is ``TimeoutError``, an ``OSError``,
    and Celery 5.6 reconnects to the broker on every such timeout (once a second while a
    result is awaited)."""

    def drain_events(self, timeout: float | None = None) -> Any:
        if not self._connection:
            return super().drain_events(timeout)
        try:
            return self._connection.drain_events(timeout=timeout)
        except TimeoutError:
            raise  # nothing arrived: the caller's loop goes on
        except self._connection_errors:
            with self.reconnect_on_error():
                raise

    def close(self) -> None:
        """Close this thread's reply connection (the next wait opens a new one)."""
        consumer: Any = getattr(self, "_consumer", None)
        connection: Any = getattr(self, "_connection", None)
        self._consumer = None
        self._connection = None
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.cancel()
        if connection is not None:
            connection.close()


class QuietRPCBackend(RPCBackend):  # type: ignore[misc]
    ResultConsumer = QuietResultConsumer


def celery_app(broker_url: str, queue: str) -> Any:
    """A Celery app on ``broker_url`` whose bot runs go to ``queue``."""
    app = Celery(
        "workbench-bots", broker=broker_url, backend="workbench.bots.celery_app:QuietRPCBackend"
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        task_routes={EXECUTE_TASK: {"queue": queue}},
        # a run is long and one at a time per worker slot: take one message per slot, and
        # acknowledge it when the run starts, so a worker that dies mid-run does not make
        # another one run the notebook again (the service fails it; retries are the bot's)
        worker_prefetch_multiplier=1,
        task_acks_late=False,
        task_track_started=True,
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


def pack_run_files(run_dir: Path) -> str:
    """The run's files (see ``_KEPT``) as a base64 tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in _KEPT:
            path = run_dir / name
            if path.exists():
                tar.add(path, arcname=name)
    data = buffer.getvalue()
    if len(data) > MAX_RESULT_BYTES:
        raise ValueError(
            f"the run's files are {len(data) / 2**20:.0f} MB packed, more than the "
            f"{MAX_RESULT_BYTES // 2**20} MB a worker sends back; keep large artifacts in the "
            "tenant's file storage instead of wb.bot.artifact"
        )
    return base64.b64encode(data).decode("ascii")


def unpack_run_files(packed: str, run_dir: Path) -> None:
    """Write the files of :func:`pack_run_files` into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(packed)), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")
