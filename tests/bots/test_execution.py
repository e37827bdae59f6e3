"""One notebook run in its own processes: stopping the service stops its runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import workbench
from tests.bots.conftest import bot_notebook
from workbench.bots.execution import RunOutcome, execute_notebook, stop_all_runs


def test_stopping_the_service_ends_its_runs_with_a_reason(tmp_path: Path) -> None:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        wb.tenants.create("acme")
    run_dir = tmp_path / "run"
    outcome: list[RunOutcome] = []
    notebook = bot_notebook(["import time\ntime.sleep(600)"])
    thread = threading.Thread(
        target=lambda: outcome.append(
            execute_notebook(
                notebook,
                run_dir,
                home=home,
                tenant="acme",
                env={"WORKBENCH_HOME": str(home)},
                timeout=600,
            )
        )
    )
    thread.start()
    deadline = time.monotonic() + 180
    while not (run_dir / "kernel.pid").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    assert stop_all_runs() == 1
    thread.join(timeout=60)
    assert outcome[0].status == "failed"
    assert outcome[0].reason == "service-stopped"
