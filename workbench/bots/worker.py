"""A bot worker: ``workbench serve bot-worker`` — a Celery worker that executes bot runs.

Workers take runs from the Bot Service's queue on RabbitMQ (``WORKBENCH_BOT_BROKER_URL``, else
an amqp:// ``WORKBENCH_BUS_URL``; queue ``WORKBENCH_BOT_QUEUE``), as many at once as
``--concurrency``, each exactly like a run of the local executor
(:func:`~workbench.bots.execution.execute_notebook`: a runner process, a kernel of the worker's
:class:`~workbench.bots.kernel_pool.KernelPool`, timeout, dead-kernel detection) in a scratch
directory under ``--data-dir``, and send the outcome and the run's files back. Start as many as
the load needs, on any number of machines.

A small HTTP side on ``--host``/``--port`` (default 127.0.0.1:5010) serves ``/healthz`` (the
process is up), ``/readyz`` (connected to the broker and consuming) and ``/metrics``
(Prometheus: runs by status, runs in flight, run seconds).
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from workbench.bots.celery_app import (
    EXECUTE_TASK,
    STOP_RUNS_COMMAND,
    celery_app,
    pack_run_files,
)
from workbench.bots.execution import execute_notebook, stop_run
from workbench.bots.kernel_pool import KernelPool

__all__ = ["DEFAULT_PORT", "BotWorker", "default_hostname"]

log = logging.getLogger("workbench.bots.worker")

DEFAULT_PORT = 5010


def default_hostname() -> str:
    """``bot-worker@<host name>``: the worker's Celery node name."""
    return f"bot-worker@{socket.gethostname()}"


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "workbench_bot_worker_runs",
            "Bot run attempts this worker finished, by status.",
            ["status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "workbench_bot_worker_runs_in_flight",
            "Bot runs executing on this worker now.",
            registry=self.registry,
        )
        self.seconds = Histogram(
            "workbench_bot_worker_run_seconds",
            "Wall time of a run attempt on this worker.",
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )


class BotWorker:
    """One worker process: the Celery app with the execute task, its kernel pool, HTTP side."""

    def __init__(
        self,
        broker_url: str,
        *,
        home: Path,
        queue: str = "workbench.bots",
        concurrency: int = 2,
        pool_size: int = 1,
        hostname: str | None = None,
    ) -> None:
        self.home = home
        self.queue = queue
        self.concurrency = max(1, concurrency)
        self.hostname = hostname or default_hostname()
        self.runs_dir = home / "bots" / "worker-runs"
        self.pool = KernelPool(home, pool_size)
        self.metrics = WorkerMetrics()
        self.ready = threading.Event()
        self.app = celery_app(broker_url, queue)
        self._worker: Any = None
        self._register()

    def _register(self) -> None:
        from celery.worker.control import control_command

        worker = self

        @self.app.task(name=EXECUTE_TASK, bind=True)  # type: ignore[untyped-decorator]
        def execute(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
            return worker.execute(str(task.request.id), payload)

        @control_command(  # type: ignore[untyped-decorator]
            name=STOP_RUNS_COMMAND, args=[("task_ids", list)], signature="<task_id> ..."
        )
        def stop_runs(state: Any, task_ids: list[str]) -> dict[str, Any]:
            stopped = sum(stop_run(worker.runs_dir / str(t)) for t in task_ids)
            return {"ok": f"{stopped} run(s) stopped"}

    def execute(self, task_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One attempt of a run (the task's body): the outcome and the run's packed files."""
        run_dir = self.runs_dir / task_id
        self.metrics.in_flight.inc()
        began = time.monotonic()
        try:
            outcome = execute_notebook(
                payload["notebook"],
                run_dir,
                home=self.home,
                tenant=payload["tenant"],
                env=payload["env"],
                parameters=payload.get("parameters") or {},
                timeout=float(payload["timeout"]),
                memory_bytes=payload.get("memoryBytes"),
                pool=self.pool,
            )
            try:
                files = pack_run_files(run_dir)
            except ValueError as exc:
                outcome.status, outcome.reason, outcome.error = (
                    "failed",
                    "result-too-large",
                    str(exc),
                )
                files = ""
            self.metrics.runs.labels(outcome.status).inc()
            return {"outcome": asdict(outcome), "files": files, "worker": self.hostname}
        finally:
            self.metrics.in_flight.dec()
            self.metrics.seconds.observe(time.monotonic() - began)
            shutil.rmtree(run_dir, ignore_errors=True)

    # ---- running ---------------------------------------------------------------------------

    def serve_http(self, host: str, port: int) -> ThreadingHTTPServer:
        """Start the HTTP side (``/healthz``, ``/readyz``, ``/metrics``) in a thread."""
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._send(200, b'{"status": "ok"}', "application/json")
                elif self.path == "/readyz":
                    ready = worker.is_ready()
                    body = b'{"status": "ready"}' if ready else b'{"status": "not connected"}'
                    self._send(200 if ready else 503, body, "application/json")
                elif self.path == "/metrics":
                    self._send(200, generate_latest(worker.metrics.registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b'{"detail": "not found"}', "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds: not worth a log line each

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="bot-worker-http").start()
        return server

    def is_ready(self) -> bool:
        consumer = getattr(self._worker, "consumer", None) if self._worker is not None else None
        connection = getattr(consumer, "connection", None)
        return self.ready.is_set() and bool(connection is not None and connection.connected)

    def run(self) -> int:
        """Consume runs until stopped (SIGTERM/SIGINT: warm shutdown, running runs finish)."""
        from celery import signals

        def on_ready(**_: Any) -> None:
            self.ready.set()

        signals.worker_ready.connect(on_ready, weak=False)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._worker = self.app.Worker(
            hostname=self.hostname,
            pool_cls="threads",
            concurrency=self.concurrency,
            queues=[self.queue],
            without_gossip=True,
            without_mingle=True,
            loglevel="INFO",
            quiet=True,
        )
        try:
            self._worker.start()
        finally:
            self.pool.close()
        return int(self._worker.exitcode or 0)
