"""``workbench bench bot-overhead``: the same code as a plain script and as a scheduled bot.

Measures, on a throwaway data directory with the demo model: the wall time of a plain
``python script.py`` (the baseline), the wall time of the same code as a bot run (queued to
finished, through the scheduler, a runner process and a kernel of the tenant's pool of
pre-started kernels, HTML rendering included), the time from the run's fire to its kernel
being there for it (``kernel.pid``: written when the runner gets its kernel), and the runs per
minute one tenant gets at its concurrency limit. Sequential runs start once the pool has its
standbys again, as scheduled runs that are further apart than a kernel start find it; the burst
shows what back-to-back runs get. Targets (issue 15): overhead < 2 s per run,
schedule-to-kernel-start p95 < 1 s.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.bench.common import BenchReport, percentiles

__all__ = ["bot_overhead"]

CODE = """\
meters = wb.entities.find("Demo.Energy/EnergyMeter", first=100).items
wb.entities.create("Demo.Energy/Site", {"name": f"bench {len(meters)}"})
"""

SCRIPT = (
    """\
import sys, workbench
with workbench.open(sys.argv[1]) as opened:
    wb = opened.tenant("bench")
"""
    + "\n".join("    " + line for line in CODE.splitlines())
    + "\n"
)


def _notebook() -> dict[str, Any]:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
        "cells": [
            {
                "cell_type": "code",
                "source": CODE,
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
    }


def bot_overhead(*, quick: bool = False, backend: str | None = None) -> BenchReport:
    import workbench
    from workbench.bots.credentials import InProcessCredentials
    from workbench.bots.history import history_of
    from workbench.bots.kernel_pool import KernelPool
    from workbench.bots.runs import BotRunner
    from workbench.bots.scheduler import BotScheduler, LocalPoolExecutor
    from workbench.demo import demo_data_dir
    from workbench.promotion.service import Promotions

    runs = 3 if quick else 10
    limit = 2
    with tempfile.TemporaryDirectory(prefix="wb-bench-bots-") as folder:
        home = Path(folder) / "wb"
        with workbench.open(home) as wb:
            tenant = wb.tenants.create("bench")
            tenant.ck.import_library(demo_data_dir() / "ConstructionKit")
            script = Path(folder) / "script.py"
            script.write_text(SCRIPT, encoding="utf-8")
            plain = []
            for _ in range(runs):
                began = time.perf_counter()
                subprocess.run([sys.executable, str(script), str(home)], check=True)
                plain.append(time.perf_counter() - began)
            Promotions(wb).promote(
                "bench",
                _notebook(),
                kind="bot",
                name="bench",
                author="bench",
                options={"concurrency": limit, "overlap": "queue"},
            )
            pool = KernelPool(home, size=limit)
            runner = BotRunner(
                home, functools.partial(history_of, wb), InProcessCredentials(home), pool=pool
            )
            scheduler = BotScheduler(
                wb, LocalPoolExecutor(runner, limit), tenant_concurrency=limit, tick_s=0.05
            )
            scheduler.start()
            try:
                sequential = []
                kernel_start = []
                for _ in range(runs):
                    pool.wait_ready("bench")
                    record = scheduler.trigger("bench", "bench")
                    done = scheduler.wait("bench", "bench", record.run_id)
                    assert done.status == "succeeded", done.error
                    sequential.append((done.finished_at or 0) - done.queued_at)
                    pid = history_of(wb, "bench").run_dir("bench", record.run_id) / "kernel.pid"
                    kernel_start.append(pid.stat().st_mtime - done.queued_at)
                pool.wait_ready("bench")
                began = time.perf_counter()
                burst = [scheduler.trigger("bench", "bench") for _ in range(runs * 2)]
                for record in burst:
                    assert scheduler.wait("bench", "bench", record.run_id).status == "succeeded"
                burst_s = time.perf_counter() - began
            finally:
                scheduler.stop()
    overhead = statistics.median(sequential) - statistics.median(plain)
    kernel_p95 = percentiles(kernel_start)["p95_ms"] / 1000
    report = BenchReport(
        "bot-overhead",
        quick,
        "embedded",
        {"runs": runs, "tenantConcurrency": limit, "burst": runs * 2, "poolSize": limit},
        baseline={"plainScriptMedianS": round(statistics.median(plain), 3)},
    )
    report.add("plain script (median)", statistics.median(plain), "s")
    report.add("bot run (median, queued→finished)", statistics.median(sequential), "s")
    report.add("overhead per run", overhead, "s", "< 2 s", overhead < 2)
    report.add("schedule → kernel process p95", kernel_p95, "s", "< 1 s", kernel_p95 < 1)
    report.add(f"runs/minute at tenant limit {limit}", runs * 2 / burst_s * 60, "runs/min")
    return report
