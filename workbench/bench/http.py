"""``graphql-list`` over HTTP (BENCHMARKS.md): the Asset Repository in its own process.

The service runs as ``workbench serve asset-repository`` in a subprocess (as deployed: one
process, static-token auth, access log on), the load comes from client threads in this process
(closed loop, each thread one keep-alive connection). The baseline is the raw entity store
fetching the same page in process, in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from workbench.bench.common import BenchReport, percentiles, time_calls

__all__ = ["graphql_list_http"]

TOKEN = "bench-http-token-0123456789"
TENANT = "bench-http"


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Asset Repository exited during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the Asset Repository did not become ready")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(
    url: str, query: str, concurrency: int, requests_per_thread: int
) -> tuple[list[float], float, int]:
    """Closed-loop load; latencies (s), wall time (s) and the number of failed requests."""
    import httpx

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures = [0] * concurrency
    start_line = threading.Barrier(concurrency + 1)
    body = {"query": query}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def worker(index: int) -> None:
        mine = latencies[index]
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            client.post(f"/tenants/{TENANT}/graphql", json=body)  # connect, warm
            start_line.wait()
            for _ in range(requests_per_thread):
                began = time.perf_counter()
                response = client.post(f"/tenants/{TENANT}/graphql", json=body)
                mine.append(time.perf_counter() - began)
                if response.status_code != 200 or b'"errors"' in response.content[:20]:
                    failures[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return [s for per_thread in latencies for s in per_thread], wall, sum(failures)


def graphql_list_http(
    quick: bool = False, backend: str | None = None, *, concurrency: int = 4
) -> BenchReport:
    """``rt<Type>(first: 100)`` with 6 fields over HTTP: throughput and latency percentiles."""
    import workbench
    from workbench.bench.graphql import GRAPHQL_BENCH_LIBRARY, LIST_QUERY, _fill
    from workbench.ck.loader import load_library_from_text
    from workbench.testing.http import free_port

    total = 1_000 if quick else 10_000
    per_thread = 50 if quick else 1_000
    report = BenchReport(
        "graphql-list-http",
        quick,
        backend or "sqlite (embedded)",
        {
            "entities": total,
            "page": 100,
            "fields": 6,
            "concurrency": concurrency,
            "requests": per_thread * concurrency,
        },
    )
    home = Path(tempfile.mkdtemp(prefix="wb-bench-http-"))
    try:
        with workbench.open(home) as wb:
            config = {"entities.url": backend} if backend else None
            tenant = wb.tenants.create(TENANT, config=config)
            tenant.ck.import_library(load_library_from_text(GRAPHQL_BENCH_LIBRARY, "bench.yaml"))
            _fill(tenant, total, 10)
            query = tenant.entities.build_query("Bench.Meter/Meter", first=100)
            store = tenant.entity_store
            store.find(query)
            raw = time_calls(lambda: store.find(query), 200 if quick else 1_000)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "WORKBENCH_API_TOKEN": TOKEN,
            # a static token (development mode) keeps the Identity service out of the measurement
            "WORKBENCH_DEV_STATIC_TOKEN": "true",
            "WORKBENCH_LOG_FORMAT": "json",
        }
        command = [
            sys.executable,
            "-m",
            "workbench",
            "serve",
            "asset-repository",
            "--port",
            str(port),
            "--data-dir",
            str(home),
        ]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_ready(url, process)
            _load(url, LIST_QUERY, 1, 20)  # warm the schema and document caches
            cpu_before = _cpu_seconds(process.pid)
            latencies, wall, failures = _load(url, LIST_QUERY, concurrency, per_thread)
            cpu_after = _cpu_seconds(process.pid)
            single, _, _ = _load(url, LIST_QUERY, 1, per_thread // 2)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        if backend is None:
            shutil.rmtree(home, ignore_errors=True)
    stats, single_stats, raw_stats = percentiles(latencies), percentiles(single), percentiles(raw)
    throughput = len(latencies) / wall
    report.add("HTTP requests/s", throughput, "req/s", ">= 500", throughput >= 500)
    report.add("HTTP latency p50", stats["p50_ms"], "ms")
    report.add("HTTP latency p95", stats["p95_ms"], "ms", "< 20", stats["p95_ms"] < 20)
    report.add("HTTP latency p99", stats["p99_ms"], "ms")
    report.add("HTTP latency p50 (1 client)", single_stats["p50_ms"], "ms")
    report.add("raw store page p50 (in process)", raw_stats["p50_ms"], "ms")
    report.add(
        "HTTP (1 client) / raw store (p50)", single_stats["p50_ms"] / raw_stats["p50_ms"], "x"
    )
    if cpu_before is not None and cpu_after is not None:
        # CPU the server spent per request: what the service costs, whatever else the machine
        # is doing; 1000 / it is the rate one core could serve
        cpu_ms = (cpu_after - cpu_before) * 1000 / max(1, len(latencies))
        report.add("server CPU per request", cpu_ms, "ms")
        report.add("server capacity (1 core, from CPU time)", 1000 / max(cpu_ms, 1e-6), "req/s")
    report.add("failed requests", failures, "", "0", failures == 0)
    report.baseline = {"raw_store_page": raw_stats}
    return report


def main(argv: list[str] | None = None) -> Any:  # pragma: no cover - manual runs
    import json

    args = argv if argv is not None else sys.argv[1:]
    result = graphql_list_http(quick="--quick" in args)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
