"""What every benchmark shares: timing, percentiles, the machine, the report.

A benchmark function returns a :class:`BenchReport`; the CLI prints it as a table and writes it
as JSON with ``--json PATH``. Every report carries a ratio against a baseline measured in the same
run (the raw backend doing the same work), because absolute times drift on shared machines.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "BenchReport",
    "Metric",
    "bench_tenant",
    "hardware",
    "percentiles",
    "progress",
    "time_calls",
    "timer",
]


def hardware() -> dict[str, Any]:
    """The machine the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    with suppress(ValueError, OSError):
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memoryGiB": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds of samples given in seconds."""
    if not samples_s:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {
        "p50_ms": round(pick(0.50), 4),
        "p95_ms": round(pick(0.95), 4),
        "p99_ms": round(pick(0.99), 4),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 4),
    }


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """``with timer() as elapsed: ...; elapsed()`` gives seconds (also after the block)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def time_calls(func: Callable[[], Any], count: int) -> list[float]:
    """Call ``func`` ``count`` times; the duration of each call in seconds."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return samples


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


@dataclass
class Metric:
    """One measured figure with its target (as text, e.g. '>= 20000/s') and whether it is met."""

    name: str
    value: float
    unit: str
    target: str | None = None
    met: bool | None = None


@dataclass
class BenchReport:
    benchmark: str
    quick: bool
    backend: str
    shape: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=hardware)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        target: str | None = None,
        met: bool | None = None,
    ) -> None:
        self.metrics.append(Metric(name, round(value, 4), unit, target, met))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def bench_tenant(library_yaml: str, backend: str | None, name: str) -> Iterator[Any]:
    """A throw-away workbench with tenant ``name`` (its entities on ``backend`` when given, e.g.
    ``mongodb://host/db``) holding the library ``library_yaml``; removed afterwards."""
    import shutil
    import tempfile
    from pathlib import Path

    import workbench
    from workbench.ck.loader import load_library_from_text

    home = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        with workbench.open(home) as wb:
            config = {"entities.url": backend} if backend else None
            tenant = wb.tenants.create(name, config=config)
            tenant.ck.import_library(load_library_from_text(library_yaml, "bench.yaml"))
            try:
                yield tenant
            finally:
                if backend:
                    tenant.entity_store.drop()
    finally:
        shutil.rmtree(home, ignore_errors=True)
