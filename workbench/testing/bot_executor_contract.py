"""The contract every bot executor passes (:class:`workbench.bots.executor.Executor`).

Subclass :class:`BotExecutorContract` in a test module that defines the fixture
``executor_factory`` (a callable building the executor around a runner); the suite runs real
notebooks in real kernels through :class:`~workbench.bots.runs.BotRunner`, so what it checks
is what users see in the run history: parameters, outputs, artifacts, logs and HTML of a run;
a failing cell; a kernel killed with SIGKILL failing the run at once with the signal and its
memory use; timeouts and retries; stopping the executor ending its runs. One data directory
(tenant ``acme``) and one executor serve the whole class, so pre-started kernels are reused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.bots.credentials import InProcessCredentials
from workbench.bots.executor import Executor
from workbench.bots.history import RunHistory, RunRecord, history_of, new_run_id
from workbench.bots.runs import BotRunner, RunRequest
from workbench.bots.schedules import BotSettings
from workbench.promotion.artifacts import Artifact

__all__ = ["BotExecutorContract", "ExecutorHarness", "contract_notebook"]

TENANT = "acme"


def contract_notebook(cells: list[str], parameters: str = "") -> dict[str, Any]:
    """A bot notebook (nbformat 4 JSON) of ``cells``, with a ``parameters`` cell first."""

    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "source": source,
            "metadata": {"tags": tags or []},
            "outputs": [],
            "execution_count": None,
        }

    cells_json = [cell(parameters, ["parameters"])] if parameters else []
    cells_json += [cell(c) for c in cells]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
        "cells": cells_json,
    }


@dataclass
class ExecutorHarness:
    """The executor under test, its runner and the tenant's run history."""

    executor: Executor
    runner: BotRunner
    history: RunHistory

    def run(
        self,
        notebook: dict[str, Any],
        *,
        parameters: dict[str, Any] | None = None,
        wait_s: float = 300.0,
        **settings: Any,
    ) -> RunRecord:
        """Submit a run of ``notebook`` (bot settings ``settings``) and return its record."""
        done = self.submit(notebook, parameters=parameters, **settings).result(timeout=wait_s)
        assert self.history.get("contract", done.run_id).status == done.status
        return done

    def submit(
        self, notebook: dict[str, Any], *, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> Future[RunRecord]:
        bot_settings = BotSettings.from_dict({"timeout": 300, **settings})
        artifact = Artifact(
            tenant=TENANT,
            name="contract",
            version=1,
            kind="bot",
            content_hash="sha256:contract",
            author="contract",
            created="2026-01-01T00:00:00Z",
            parameters={},
            packages={},
            notebook=notebook,
        )
        record = RunRecord(
            new_run_id(), TENANT, "contract", 1, "manual", parameters=parameters or {}
        )
        self.history.save(record)
        return self.executor.submit(RunRequest(record, artifact, bot_settings))

    def run_dir(self, record: RunRecord) -> Path:
        return self.history.run_dir(record.bot, record.run_id)


class BotExecutorContract:
    """See the module docstring. The test module defines the ``executor_factory`` fixture
    (module or session scope): a callable that builds the executor under test around a
    :class:`BotRunner`."""

    @pytest.fixture(scope="class")
    @classmethod
    def harness(
        cls,
        tmp_path_factory: pytest.TempPathFactory,
        executor_factory: Callable[[BotRunner], Executor],
    ) -> Iterator[ExecutorHarness]:
        import workbench

        home = tmp_path_factory.mktemp("executor") / "wb"
        with workbench.open(home) as wb:
            wb.tenants.create(TENANT)
            runner = BotRunner(
                wb.home, functools.partial(history_of, wb), InProcessCredentials(wb.home)
            )
            executor = executor_factory(runner)
            executor.prepare(TENANT)
            try:
                yield ExecutorHarness(executor, runner, history_of(wb, TENANT))
            finally:
                executor.shutdown()

    def test_a_run_gets_its_parameters_tenant_outputs_artifacts_log_and_html(
        self, harness: ExecutorHarness
    ) -> None:
        notebook = contract_notebook(
            [
                "import os\nprint('hello from', label)\nwb.bot.output('label', label)\n"
                "wb.bot.output('tenant', os.environ['WORKBENCH_TENANT'])\n"
                "wb.bot.output('wb', repr(wb))\nwb.bot.artifact('note.txt', 'kept')"
            ],
            parameters="label = 'default'",
        )
        record = harness.run(notebook, parameters={"label": "contract"})
        assert record.status == "succeeded", record.error
        assert record.outputs == {"label": "contract", "tenant": TENANT, "wb": f"<Tenant {TENANT}>"}
        assert record.artifacts == ["note.txt"]
        folder = harness.run_dir(record)
        assert (folder / "artifacts" / "note.txt").read_text() == "kept"
        assert "hello from contract" in (folder / "run.log").read_text()
        assert "hello from contract" in (folder / "output.html").read_text()
        assert record.parameters == {"label": "contract"}

    def test_a_failing_cell_fails_the_run_naming_the_error(self, harness: ExecutorHarness) -> None:
        record = harness.run(contract_notebook(["raise RuntimeError('sensor table missing')"]))
        assert record.status == "failed"
        assert record.reason == "cell-error"
        assert "RuntimeError: sensor table missing" in (record.error or "")
        assert record.attempts == 1

    def test_a_killed_kernel_fails_the_run_at_once_with_the_signal(
        self, harness: ExecutorHarness
    ) -> None:
        notebook = contract_notebook(
            [
                "import os, signal, time\nblob = bytearray(50_000_000)\ntime.sleep(0.5)\n"
                "os.kill(os.getpid(), signal.SIGKILL)\ntime.sleep(600)"
            ]
        )
        record = harness.run(notebook, timeout=300)
        assert record.status == "failed"
        assert record.reason == "kernel-died"
        assert "SIGKILL" in (record.error or "")
        assert record.details["lastMemoryBytes"] > 10_000_000
        assert (record.finished_at or 0) - (record.started_at or 0) < 120  # not the 300 s

    def test_a_timeout_stops_the_run_and_retries_follow(self, harness: ExecutorHarness) -> None:
        notebook = contract_notebook(["import time\ntime.sleep(600)"])
        record = harness.run(notebook, timeout="3s", retries=1, retry_backoff="0s")
        assert record.status == "timed-out"
        assert record.reason == "timeout"
        assert record.attempts == 2
        assert "timeout of 3 s" in (record.error or "")
        assert (harness.run_dir(record) / "attempt-2").is_dir()

    def test_stopping_the_executor_ends_its_runs_as_service_stopped(
        self,
        harness: ExecutorHarness,
        executor_factory: Callable[[BotRunner], Executor],
        tmp_path: Path,
    ) -> None:
        import time

        own = harness.runner
        executor = executor_factory(BotRunner(own.home, own.history, own.credentials))
        marker = tmp_path / "started"
        notebook = contract_notebook(
            ["import pathlib, time\npathlib.Path(marker).touch()\ntime.sleep(600)"],
            parameters="marker = ''",
        )
        stopping = ExecutorHarness(executor, own, harness.history)
        future = stopping.submit(notebook, parameters={"marker": str(marker)})
        deadline = time.monotonic() + 300
        while not marker.exists():  # until the notebook runs in its kernel
            assert not future.done(), future.result().error
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.1)
        executor.shutdown()
        done = future.result(timeout=120)
        assert done.status == "failed"
        assert done.reason == "service-stopped"
        assert done.attempts == 1  # not retried
