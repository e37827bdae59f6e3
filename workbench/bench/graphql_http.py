"""``graphql-large-http`` (BENCHMARKS.md): ``graphql-large``'s query over HTTP.

One query returning 10,000 meters (1,000 with ``--quick``) with six scalars, a record and the
parent building, sent to ``workbench serve asset-repository`` in its own process (as deployed:
static-token auth, access log on), one request at a time. Measured: the time until the last byte
(the server's time: loopback, one client), the time to the first byte, the server's CPU per
request (its process, from ``/proc``, the idle rate subtracted), and whether the body came
chunked (streamed). The baseline is the raw entity store fetching the page and the parents in
process, in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.bench.common import BenchReport, percentiles, time_calls
from workbench.bench.http import TOKEN, _cpu_seconds, _wait_ready
from workbench.services.asset_repository.graphql_stream import STREAM_MIN_ITEMS

__all__ = ["graphql_large_http"]

TENANT = "bench-http"
#: the operation cost limit the service runs with here (the query costs about 12 per entity)
MAX_COST = 1_000_000


def graphql_large_http(quick: bool = False, backend: str | None = None) -> BenchReport:
    """``graphql-large`` over HTTP: server time p50 < 0.3 s, streamed."""
    import httpx

    import workbench
    from workbench.bench.graphql import GRAPHQL_BENCH_LIBRARY, LARGE_QUERY, _fill
    from workbench.ck.loader import load_library_from_text
    from workbench.testing.http import free_port

    total = 1_000 if quick else 10_000
    samples = 5 if quick else 20
    report = BenchReport(
        "graphql-large-http",
        quick,
        backend or "sqlite (embedded)",
        {
            "entities": total,
            "scalars": 6,
            "record_fields": 2,
            "parent_fields": 2,
            "samples": samples,
            "clients": 1,
            "WORKBENCH_GRAPHQL_MAX_COST": MAX_COST,
        },
    )
    home = Path(tempfile.mkdtemp(prefix="wb-bench-large-"))
    try:
        with workbench.open(home) as wb:
            config = {"entities.url": backend} if backend else None
            tenant = wb.tenants.create(TENANT, config=config)
            tenant.ck.import_library(load_library_from_text(GRAPHQL_BENCH_LIBRARY, "bench.yaml"))
            _fill(tenant, total, max(1, total // 100))
            store = tenant.entity_store
            query = tenant.entities.build_query("Bench.Meter/Meter", first=total)

            def raw() -> None:
                page = store.find(query)
                links = store.associations([e.rt_id for e in page.items], "outbound")
                store.get_many(sorted({link.target_rt_id for link in links}))

            raw()
            raw_times = time_calls(raw, samples)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "WORKBENCH_API_TOKEN": TOKEN,
            "WORKBENCH_DEV_STATIC_TOKEN": "true",
            "WORKBENCH_LOG_FORMAT": "json",
            # 10,000 entities with their parents cost more than the default limit (50,000):
            # raised as an operator allowing such exports would
            "WORKBENCH_GRAPHQL_MAX_COST": str(MAX_COST),
        }
        command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
        command += ["--port", str(port), "--data-dir", str(home)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        body = {"query": LARGE_QUERY, "variables": {"first": total}}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        last: list[float] = []
        first: list[float] = []
        sizes: list[int] = []
        chunked = True
        failures = 0
        try:
            _wait_ready(url, process, timeout=240)
            with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
                for _ in range(3):  # schema, document and compiled plans
                    warm = http.post(f"/tenants/{TENANT}/graphql", json=body)
                    if warm.status_code != 200:
                        raise RuntimeError(f"the query failed ({warm.status_code}): {warm.text}")
                idle_began, idle_cpu = time.perf_counter(), _cpu_seconds(process.pid)
                time.sleep(1.0 if quick else 2.0)
                idle_after = _cpu_seconds(process.pid)
                idle_rate = 0.0
                if idle_cpu is not None and idle_after is not None:
                    idle_rate = (idle_after - idle_cpu) / (time.perf_counter() - idle_began)
                cpu_before, began = _cpu_seconds(process.pid), time.perf_counter()
                for _ in range(samples):
                    start = time.perf_counter()
                    with http.stream("POST", f"/tenants/{TENANT}/graphql", json=body) as response:
                        size = 0
                        for index, chunk in enumerate(response.iter_raw()):
                            if index == 0:
                                first.append(time.perf_counter() - start)
                            size += len(chunk)
                    last.append(time.perf_counter() - start)
                    sizes.append(size)
                    chunked = chunked and response.headers.get("transfer-encoding") == "chunked"
                    if response.status_code != 200:
                        failures += 1
                cpu_after = _cpu_seconds(process.pid)
                check = http.post(f"/tenants/{TENANT}/graphql", json=body).json()
                items = check.get("data", {}).get("runtime", {}).get("rtBenchMeterMeter", {})
                if check.get("errors") or len(items.get("items", ())) != total:
                    failures += 1
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        if backend is None:
            shutil.rmtree(home, ignore_errors=True)
    stats, first_stats, raw_stats = percentiles(last), percentiles(first), percentiles(raw_times)
    seconds = stats["p50_ms"] / 1000
    report.add("server time p50 (to the last byte)", seconds, "s", "< 0.3", seconds < 0.3)
    report.add("server time p95 (to the last byte)", stats["p95_ms"] / 1000, "s")
    report.add("time to the first byte p50", first_stats["p50_ms"] / 1000, "s")
    if cpu_before is not None and cpu_after is not None:
        busy = cpu_after - cpu_before - idle_rate * (time.perf_counter() - began)
        report.add("server CPU per request", max(busy, 0.0) / samples, "s")
    report.add("response size", sum(sizes) / max(1, len(sizes)) / 2**20, "MiB")
    if total >= STREAM_MIN_ITEMS:
        report.add("response streamed (chunked)", float(chunked), "", "1", chunked)
    else:  # --quick: too small to stream
        report.add(
            f"response streamed (chunked; from {STREAM_MIN_ITEMS} items)", float(chunked), ""
        )
    report.add("raw store (page + parents) p50", raw_stats["p50_ms"] / 1000, "s")
    report.add("HTTP / raw store (p50)", stats["p50_ms"] / raw_stats["p50_ms"], "x")
    report.add("failed requests", failures, "", "0", failures == 0)
    report.baseline = {"raw_store": raw_stats, "idle_server_cpu_per_s": idle_rate}
    return report
