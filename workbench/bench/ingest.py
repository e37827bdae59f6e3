"""``pipeline-ingest`` (issue 14): points per second from devices into queryable stream data.

:func:`pipeline_ingest` measures the real path, every leg its own process (devices → mosquitto →
an edge adapter process → RabbitMQ → the Asset Repository's stream-points consumer → DuckDB,
:mod:`workbench.bench.ingest_processes`), with :func:`in_process_ingest` as the same-run
baseline.

:func:`in_process_ingest`: simulated devices deliver one message per poll (every meter's four
values at one second: a message carries many points, as one Modbus poll of many registers does);
each message is one execution of a pipeline, up to ``CONCURRENCY`` in flight as
``FromPipelineDataEvent@1`` with ``maxConcurrency`` runs them; ``BufferData@1`` collects the
messages of concurrent executions and its ``SaveStreamDataInArchive@1`` writes each batch
through the tenant's stream service (validation, entity check, upsert) in one call. Its own
baseline writes the same points with ``TypeStreams.write`` directly, one call per message (no
pipeline). Its latency is from the start of an execution to its points being queryable (an
execution ends once its batch is written).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from workbench.bench.common import BenchReport, percentiles, progress, timer
from workbench.bench.ingest_processes import meter_poll
from workbench.bench.streams import METER, START, _tenant

__all__ = ["pipeline_ingest"]

#: executions in flight (the trigger's maxConcurrency) and messages per written batch
CONCURRENCY = 40
BATCH = 20

PIPELINE = f"""
triggers:
  - type: FromPipelineDataEvent@1
    maxConcurrency: {CONCURRENCY}
transformations:
  - type: BufferData@1
    path: $.updates
    bufferTime: 00:00:00.2
    maxItems: {BATCH}
    transformations:
      - type: SaveStreamDataInArchive@1
        path: $.items
        ckTypeId: Demo.Energy/EnergyMeter
"""


def _poll(rt_ids: list[str], second: int, offset: timedelta) -> list[dict[str, Any]]:
    return meter_poll(rt_ids, START + offset, second)


def in_process_ingest(quick: bool = False, backend: str | None = None) -> BenchReport:
    """The pipeline in this process: messages of many points through
    ``SaveStreamDataInArchive@1`` against direct writes (:func:`pipeline_ingest`'s baseline)."""
    from workbench.communication import build_pipeline
    from workbench.communication.node import ExecutionEnvironment

    meters = 50 if quick else 250
    messages = 40 if quick else 400
    points_per_message = meters * 4
    total = messages * points_per_message
    report = BenchReport(
        "pipeline-ingest-in-process",
        quick,
        backend or "duckdb (embedded)",
        {
            "messages": messages,
            "meters": meters,
            "pointsPerMessage": points_per_message,
            "concurrency": CONCURRENCY,
            "messagesPerBatch": BATCH,
        },
    )
    with _tenant(backend, meters) as (tenant, rt_ids, _home):
        pipeline = build_pipeline(PIPELINE, name="ingest")
        streams = tenant.streams(METER)
        batches = [_poll(rt_ids, s, timedelta(0)) for s in range(messages)]
        latencies: list[float] = []

        async def run_all() -> None:
            env = ExecutionEnvironment(pipeline_name="ingest", tenant=tenant)
            slots = asyncio.Semaphore(CONCURRENCY)

            async def one(batch: list[dict[str, Any]], advance: Any) -> None:
                try:
                    began = time.perf_counter()
                    result = await pipeline.execute({"updates": batch}, env)
                    if result.status != "Completed":
                        raise RuntimeError(f"pipeline-ingest: {result.error}")
                    latencies.append(time.perf_counter() - began)
                    advance(1)
                finally:
                    slots.release()

            with progress("pipeline-ingest", messages) as advance:
                tasks = []
                for batch in batches:  # as the trigger does: the next one once a slot is free
                    await slots.acquire()
                    tasks.append(asyncio.create_task(one(batch, advance)))
                await asyncio.gather(*tasks)

        cpu_began = time.process_time()
        with timer() as elapsed:
            asyncio.run(run_all())
        ours = elapsed()
        cpu = time.process_time() - cpu_began  # every thread of the process (DuckDB's too)
        # queryable: every row the pipeline wrote reads back (one row per meter and second)
        rows = streams.read(START, START + timedelta(seconds=messages)).to_arrow().num_rows
        # baseline: the same points written straight to the stream service
        direct = [
            [
                {"rtId": p["rtId"], "timestamp": p["timestamp"], **p["attributes"]}
                for p in _poll(rt_ids, s, timedelta(days=30))
            ]
            for s in range(messages)
        ]
        with timer() as elapsed:
            for points in direct:
                streams.write(points)
        raw = elapsed()
    ours_rate, raw_rate = total / ours, total / raw
    report.baseline = {
        "what": "TypeStreams.write of the same point batches, no pipeline",
        "pointsPerSecond": raw_rate,
    }
    p95_ms = percentiles(latencies)["p95_ms"]
    report.add(
        "ingest through the pipeline", ours_rate, "points/s", ">= 100,000", ours_rate >= 100_000
    )
    # points per CPU-second: what a busy shared machine does not distort
    report.add("CPU cost through the pipeline", total / cpu, "points per CPU-second")
    report.add("direct stream writes", raw_rate, "points/s")
    report.add("ratio to direct", ours_rate / raw_rate, "x")
    report.add("ingest-to-queryable p95", p95_ms, "ms", "< 1000", p95_ms < 1000)
    report.add(
        "rows read back", float(rows), "rows", f"= {messages * meters}", rows == messages * meters
    )
    report.add("elapsed", ours, "s")
    return report


def pipeline_ingest(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Devices → MQTT → an edge adapter process → RabbitMQ → the Asset Repository process's
    stream-points consumer → DuckDB (:mod:`workbench.bench.ingest_processes`); the pipeline in
    this process (:func:`in_process_ingest`) is the same-run baseline. ``backend``: the
    RabbitMQ (``amqp://...``; default ``WORKBENCH_TEST_AMQP_URL``)."""
    import os

    from workbench.bench.ingest_processes import ingest_through_processes
    from workbench.bench.rabbitmq import amqp_url, bench_vhost

    url = amqp_url(backend)
    meters = 50 if quick else 250
    messages = 40 if quick else 600
    window = 20
    paced = 20 if quick else 200
    total = messages * meters * 4
    report = BenchReport(
        "pipeline-ingest",
        quick,
        "mosquitto → edge adapter process → RabbitMQ → Asset Repository process → DuckDB",
        {
            "messages": messages,
            "meters": meters,
            "pointsPerMessage": meters * 4,
            "pollsAheadOfQueryable": window,
            "pacedPolls": paced,
        },
    )
    with bench_vhost("bench-ingest") as tenant_id:
        figures = ingest_through_processes(
            url, tenant_id, meters=meters, messages=messages, window=window, paced=paced
        )
    load = os.getloadavg()
    baseline = in_process_ingest(quick=quick)
    in_process_rate = next(m.value for m in baseline.metrics if m.unit == "points/s")
    rate = total / figures["elapsed"]
    rows, distinct = int(figures["rows"]), int(figures["distinctRows"])
    expected_rows = int(figures["expectedRows"])
    report.baseline = {
        "what": "the same pipeline in this process, writing the stream service directly "
        "(pipeline-ingest-in-process, same run)",
        "pointsPerSecond": in_process_rate,
        "metrics": [m.__dict__ for m in baseline.metrics],
    }
    p50, p95 = figures["latency_p50_ms"], figures["latency_p95_ms"]
    report.add("ingest through the processes", rate, "points/s", ">= 100,000", rate >= 100_000)
    report.add("ingest-to-queryable p50", p50, "ms")
    report.add("ingest-to-queryable p95", p95, "ms", "< 1000", p95 < 1000)
    report.add("paced at half that rate", figures["pacedPointsPerSecond"], "points/s")
    report.add("paced: ingest-to-queryable p50", figures["pacedLatency_p50_ms"], "ms")
    paced_p95 = figures["pacedLatency_p95_ms"]
    report.add("paced: ingest-to-queryable p95", paced_p95, "ms", "< 1000", paced_p95 < 1000)
    report.add("in-process pipeline (baseline)", in_process_rate, "points/s")
    report.add("ratio to in-process", rate / in_process_rate, "x")
    cpu = figures["cpuAdapter"] + figures["cpuRepository"] + figures["cpuBroker"]
    report.add("CPU: edge adapter", figures["cpuAdapter"], "s")
    report.add("CPU: Asset Repository", figures["cpuRepository"], "s")
    report.add("CPU: mosquitto", figures["cpuBroker"], "s")
    report.add("points per CPU-second (adapter + repository + broker)", total / cpu, "points")
    report.add(
        "lost at the store",
        float(expected_rows - distinct),
        "rows",
        "= 0",
        distinct == expected_rows,
    )
    report.add("duplicated at the store", float(rows - distinct), "rows", "= 0", rows == distinct)
    values_right = figures["valueSum"] == figures["expectedValueSum"]
    report.add("values as sent (sum check)", float(values_right), "1 = yes", "= 1", values_right)
    report.add("edge adapter peak memory", figures["adapterPeakMiB"], "MiB")
    report.add("Asset Repository peak memory", figures["repositoryPeakMiB"], "MiB")
    report.add("elapsed", figures["elapsed"], "s")
    report.add("load average (1 min, at the end)", load[0], "")
    return report
