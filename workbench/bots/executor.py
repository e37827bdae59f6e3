"""The executor port: where a bot run's attempts execute, and the registry of its adapters.

An :class:`Executor` takes a queued :class:`~workbench.bots.runs.RunRequest` and returns a
future of its final record. Every adapter runs the request through the same
:class:`~workbench.bots.runs.BotRunner` (token, retries with backoff, history, alerts) and
differs only in where each attempt's notebook executes:

- ``local`` (:class:`LocalPoolExecutor`, the default): a process of this machine per run
  (:func:`~workbench.bots.execution.execute_notebook`);
- ``celery`` (:class:`~workbench.bots.celery_executor.CeleryExecutor`): a Celery worker on the
  platform's RabbitMQ (``workbench serve bot-worker``, on any number of machines).

:func:`workbench.bots.executors.executor_from_settings` picks one by name;
``workbench.testing.bot_executor_contract`` is the suite every adapter passes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.bots.history import RunRecord
    from workbench.bots.runs import BotRunner, RunRequest

__all__ = ["Executor", "LocalPoolExecutor"]


class Executor(ABC):
    """Where runs execute. ``submit`` returns a future of the finished record."""

    name = "executor"

    @abstractmethod
    def submit(self, request: RunRequest) -> Future[RunRecord]: ...

    def shutdown(self) -> None:  # noqa: B027 - optional
        """Stop accepting runs; runs still going end ``failed`` (reason ``service-stopped``)."""

    def prepare(self, tenant: str) -> None:  # noqa: B027 - optional
        """``tenant`` has deployed bots: get ready for its runs (pre-start kernels)."""


class LocalPoolExecutor(Executor):
    """Runs on this machine: a thread per concurrent run, each run in processes of its own."""

    name = "local"

    def __init__(self, runner: BotRunner, workers: int = 4) -> None:
        self.runner = runner
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bot-run")

    def submit(self, request: RunRequest) -> Future[RunRecord]:
        return self.pool.submit(self.runner.run, request)

    def prepare(self, tenant: str) -> None:
        if self.runner.pool is not None:
            self.runner.pool.warm(tenant)

    def shutdown(self) -> None:
        from workbench.bots.execution import stop_all_runs

        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.runner.pool is not None:
            self.runner.pool.close()
        stop_all_runs()
