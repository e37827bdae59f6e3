"""``graphql-list`` over HTTP (BENCHMARKS.md): the Asset Repository in its own process(es).

The service runs as ``workbench serve asset-repository`` in a subprocess (as deployed: static-token
auth, access log on; ``workers`` processes with ``--workers``). The load comes from ``wrk`` (a
closed-loop generator in C, so the client costs little of the shared cores) at 4, 16 and 64
connections, with a Lua script for the POST body that also reports p95; without ``wrk`` it falls
back to client threads in this process and says so. The server's CPU time per request (all its
processes, from ``/proc``) is the load-independent figure. The baseline is the raw entity store
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
    """User + system CPU time of process ``pid`` and its children (the workers; Linux
    ``/proc``), None elsewhere."""
    ticks: dict[int, tuple[int, int]] = {}  # pid -> (parent, ticks)
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    if pid not in ticks:
        return None
    total = ticks[pid][1] + sum(t for parent, t in ticks.values() if parent == pid)
    return total / os.sysconf("SC_CLK_TCK")


#: wrk's script: the POST, and p50/p95/p99 (wrk's own --latency table has no p95) on one line
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = %(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WB %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _wrk(
    url: str, query: str, connections: int, seconds: float
) -> tuple[dict[str, float], str] | None:
    """``wrk`` against the GraphQL route: requests, req/s, p50/p95/p99 (ms), failures, and its
    own output; None without ``wrk``."""
    import json

    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body = json.dumps(json.dumps({"query": query}))  # a Lua string literal
        script.write(_WRK_SCRIPT % {"token": TOKEN, "body": body})
    try:
        threads = max(1, min(2, connections))
        # a request counts as failed after 10 s (wrk's default of 2 s counted the queue of 64
        # connections on a busy 2-core machine as failures; the latency figures show the wait)
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
        command += ["--timeout", "10s"]
        command += ["-s", script.name, f"{url}/tenants/{TENANT}/graphql"]
        ran = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        os.unlink(script.name)
    out = ran.stdout
    line = next((x for x in out.splitlines() if x.startswith("WB ")), None)
    if line is None:
        raise RuntimeError(f"wrk reported no figures (status {ran.returncode}): {ran.stderr}")
    requests, duration_us, p50, p95, p99, failures = (int(v) for v in line.split()[1:])
    figures = {
        "requests": requests,
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "p99_ms": p99 / 1000,
        "failures": failures,
    }
    return figures, "\n".join(x for x in out.splitlines() if not x.startswith("WB "))


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
    quick: bool = False,
    backend: str | None = None,
    *,
    concurrency: int = 4,
    workers: int = 1,
    connections: tuple[int, ...] = (4, 16, 64),
) -> BenchReport:
    """``rt<Type>(first: 100)`` with 6 fields over HTTP: throughput, latency percentiles and the
    server's CPU per request; targets at ``concurrency`` connections, the others reported."""
    import workbench
    from workbench.bench.graphql import GRAPHQL_BENCH_LIBRARY, LIST_QUERY, _fill
    from workbench.ck.loader import load_library_from_text
    from workbench.testing.http import free_port

    total = 1_000 if quick else 10_000
    per_thread = 50 if quick else 1_000
    seconds = 3.0 if quick else 15.0
    generator = "wrk" if shutil.which("wrk") else "python threads (install wrk: apt install wrk)"
    levels = sorted({concurrency, *connections}) if generator == "wrk" else [concurrency]
    report = BenchReport(
        "graphql-list-http",
        quick,
        backend or "sqlite (embedded)",
        {
            "entities": total,
            "page": 100,
            "fields": 6,
            "connections": levels,
            "workers": workers,
            "load generator": generator,
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
        command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
        command += ["--port", str(port), "--data-dir", str(home), "--workers", str(workers)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        runs: dict[int, dict[str, float]] = {}
        wrk_output: dict[int, str] = {}
        try:
            _wait_ready(url, process, timeout=240)
            # warm every worker's schema and document caches (a connection each time)
            for _ in range(10 * workers):
                _load(url, LIST_QUERY, 1, 4)
            # what the idle service spends (bus tails, timers) is not the requests' cost
            idle_began, idle_cpu = time.perf_counter(), _cpu_seconds(process.pid)
            time.sleep(1.0 if quick else 3.0)
            idle_after = _cpu_seconds(process.pid)
            idle_rate = 0.0
            if idle_cpu is not None and idle_after is not None:
                idle_rate = (idle_after - idle_cpu) / (time.perf_counter() - idle_began)
            for level in levels:
                cpu_before = _cpu_seconds(process.pid)
                began = time.perf_counter()
                measured = _wrk(url, LIST_QUERY, level, seconds)
                if measured is None:
                    latencies, wall, failures = _load(url, LIST_QUERY, level, per_thread)
                    stats = percentiles(latencies)
                    figures = {
                        "requests": len(latencies),
                        "rps": len(latencies) / wall,
                        "p50_ms": stats["p50_ms"],
                        "p95_ms": stats["p95_ms"],
                        "p99_ms": stats["p99_ms"],
                        "failures": failures,
                    }
                else:
                    figures, wrk_output[level] = measured
                cpu_after = _cpu_seconds(process.pid)
                if cpu_before is not None and cpu_after is not None:
                    busy = cpu_after - cpu_before - idle_rate * (time.perf_counter() - began)
                    figures["cpu_ms"] = max(busy, 0.0) * 1000 / max(1, int(figures["requests"]))
                runs[level] = figures
            single, _, _ = _load(url, LIST_QUERY, 1, per_thread // 2)
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        if backend is None:
            shutil.rmtree(home, ignore_errors=True)
    main_run = runs[concurrency]
    report.add(
        f"HTTP requests/s ({concurrency} conn.)",
        main_run["rps"],
        "req/s",
        ">= 500",
        main_run["rps"] >= 500,
    )
    report.add(f"HTTP latency p50 ({concurrency} conn.)", main_run["p50_ms"], "ms")
    report.add(
        f"HTTP latency p95 ({concurrency} conn.)",
        main_run["p95_ms"],
        "ms",
        "< 20",
        main_run["p95_ms"] < 20,
    )
    report.add(f"HTTP latency p99 ({concurrency} conn.)", main_run["p99_ms"], "ms")
    if "cpu_ms" in main_run:
        # CPU the server spent per request: what the service costs, whatever else the machine
        # is doing; 1000 / it is the rate one core could serve
        cpu_ms = main_run["cpu_ms"]
        report.add("server CPU per request", cpu_ms, "ms", "<= 1.5", cpu_ms <= 1.5)
        report.add("server capacity (1 core, from CPU time)", 1000 / max(cpu_ms, 1e-6), "req/s")
    for level in levels:
        if level == concurrency:
            continue
        run = runs[level]
        report.add(f"HTTP requests/s ({level} conn.)", run["rps"], "req/s")
        report.add(f"HTTP latency p95 ({level} conn.)", run["p95_ms"], "ms")
        if "cpu_ms" in run:
            report.add(f"server CPU per request ({level} conn.)", run["cpu_ms"], "ms")
    single_stats, raw_stats = percentiles(single), percentiles(raw)
    report.add("HTTP latency p50 (1 client)", single_stats["p50_ms"], "ms")
    report.add("raw store page p50 (in process)", raw_stats["p50_ms"], "ms")
    report.add(
        "HTTP (1 client) / raw store (p50)", single_stats["p50_ms"] / raw_stats["p50_ms"], "x"
    )
    failures = sum(int(run["failures"]) for run in runs.values())
    report.add("failed requests", failures, "", "0", failures == 0)
    report.baseline = {
        "raw_store_page": raw_stats,
        "idle_server_cpu_per_s": idle_rate,
        "load_generator_output": wrk_output,
    }
    return report


def main(argv: list[str] | None = None) -> Any:  # pragma: no cover - manual runs
    import json

    args = argv if argv is not None else sys.argv[1:]
    result = graphql_list_http(quick="--quick" in args)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
