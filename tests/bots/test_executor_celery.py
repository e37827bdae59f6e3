"""The executor contract on Celery: `workbench serve bot-worker` processes on the RabbitMQ of the
bus tests (WORKBENCH_TEST_AMQP_URL; .ci/rabbitmq.sh starts one), a queue of this module's own."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from workbench.bots.celery_app import celery_app
from workbench.bots.celery_executor import CeleryExecutor
from workbench.bots.executor import Executor
from workbench.bots.runs import BotRunner
from workbench.testing.bot_executor_contract import BotExecutorContract
from workbench.testing.http import free_port
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


class Worker:
    def __init__(self, amqp_url: str, queue: str, home: Path) -> None:
        self.amqp_url, self.queue = amqp_url, queue
        self.hostname = f"bot-worker-{secrets.token_hex(3)}@test"
        self.port = free_port()
        self.log = home.parent / "worker.log"
        command = [
            sys.executable, "-m", "workbench", "serve", "bot-worker",
            "--broker-url", amqp_url, "--queue", queue, "--hostname", self.hostname,
            "--data-dir", str(home), "--port", str(self.port),
            "--concurrency", "2", "--pool-size", "1",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until the worker answers a ping through the broker (each ping waits 1 s)."""
        app = celery_app(self.amqp_url, self.queue)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"the worker ended: {self.log.read_text()[-3000:]}")
                if app.control.ping([self.hostname], timeout=1.0):
                    return
        finally:
            app.close()
        raise AssertionError(f"the worker did not answer in {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def amqp_url() -> str:
    return require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")


@pytest.fixture(scope="module")
def worker(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    queue = f"bots-test-{secrets.token_hex(4)}"
    started = Worker(amqp_url, queue, tmp_path_factory.mktemp("worker") / "wb")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def executor_factory(worker: Worker) -> Callable[[BotRunner], Executor]:
    def make(runner: BotRunner) -> Executor:
        return CeleryExecutor(runner, worker.amqp_url, queue=worker.queue, workers=2)

    return make


class TestCeleryExecutor(BotExecutorContract):
    pass


def test_the_worker_serves_health_readiness_and_metrics(worker: Worker) -> None:
    base = f"http://127.0.0.1:{worker.port}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").status_code == 200
    metrics = httpx.get(f"{base}/metrics").text
    assert "workbench_bot_worker_runs_in_flight" in metrics


def test_check_pings_the_worker_through_the_broker(worker: Worker) -> None:
    def check(hostname: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workbench", "serve", "bot-worker", "--check",
             "--broker-url", worker.amqp_url, "--queue", worker.queue, "--hostname", hostname],
            check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert check(worker.hostname).returncode == 0
    missing = check("bot-worker-nobody@test")
    assert missing.returncode == 1
    assert "did not answer" in missing.stderr


def test_a_run_no_worker_takes_fails_naming_the_command(amqp_url: str, tmp_path: Path) -> None:
    import functools

    import workbench
    from workbench.bots.credentials import InProcessCredentials
    from workbench.bots.history import history_of
    from workbench.testing.bot_executor_contract import ExecutorHarness, contract_notebook

    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create("acme")
        runner = BotRunner(
            wb.home, functools.partial(history_of, wb), InProcessCredentials(wb.home)
        )
        executor = CeleryExecutor(
            runner, amqp_url, queue=f"bots-nobody-{secrets.token_hex(4)}", worker_wait_s=2
        )
        try:
            record = ExecutorHarness(executor, runner, history_of(wb, "acme")).run(
                contract_notebook(["x = 1"])
            )
        finally:
            executor.shutdown()
    assert record.status == "failed"
    assert record.reason == "no-worker"
    assert "workbench serve bot-worker" in (record.error or "")
