"""``pipeline-ingest`` (issue 14): points per second through a pipeline into stream data.

Simulated devices deliver one message per poll (every meter's four values at one second: a
message carries many points, as one Modbus poll of many registers does); each message is one
execution of a pipeline, up to ``CONCURRENCY`` in flight as ``FromPipelineDataEvent@1`` with
``maxConcurrency`` runs them; ``BufferData@1`` collects the messages of concurrent executions
and its ``SaveStreamDataInArchive@1`` writes each batch through the tenant's stream service
(validation, entity check, upsert) in one call. The same-run baseline writes the same points
with ``TypeStreams.write`` directly, one call per message (no pipeline), so the ratio is what
the pipeline and its batching do. Ingest latency is from the start of an execution to its
points being queryable (an execution ends once its batch is written).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from workbench.bench.common import BenchReport, percentiles, progress, timer
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
    stamp = (START + offset + timedelta(seconds=second)).isoformat()
    return [
        {
            "rtId": rt_id,
            "ckTypeId": METER,
            "timestamp": stamp,
            "attributes": {
                "voltage": 230.0 + (i + second) % 7,
                "current": 5.0 + i % 3,
                "activePower": 1150.0 + second % 11,
                "energyImported": float(second),
            },
        }
        for i, rt_id in enumerate(rt_ids)
    ]


def pipeline_ingest(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Messages of many points through ``SaveStreamDataInArchive@1`` against direct writes."""
    from workbench.communication import build_pipeline
    from workbench.communication.node import ExecutionEnvironment

    meters = 50 if quick else 250
    messages = 40 if quick else 400
    points_per_message = meters * 4
    total = messages * points_per_message
    report = BenchReport(
        "pipeline-ingest",
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
