"""``bus``: message-bus throughput and latency (README "Message bus").

Backends: the embedded SQLite log (default, in a temporary directory), ``memory://`` (the
in-process bus) or a RabbitMQ URL (``amqp://USER:PASS@HOST:PORT/VHOST``, used as given: the
vhost must exist). Measured, in this order:

* ``publish_many`` throughput: batches of 1000 messages (~200 bytes of JSON each), each batch
  confirmed (RabbitMQ publisher confirms; one committed transaction in the log);
* the baseline: the same messages published one at a time, each confirmed before the next;
* a durable group consuming and acking every message;
* latency from ``publish`` in this process to a transient subscriber in another process
  (wall clock of the same machine), messages 5 ms apart so queueing does not count.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from workbench.bench.common import BenchReport, percentiles
from workbench.messaging.base import MessageBus, OutgoingMessage
from workbench.messaging.registry import redact_url

__all__ = ["bus"]

_BATCH = 1000
_SUBSCRIBER = """
import asyncio, json, sys, time
from workbench.bench.bus import open_bus
async def main():
    bus = open_bus(sys.argv[1])
    subscription = bus.subscribe("bench.latency")
    # subscribe() returns before the queue is bound; this bus's own publish after it is sent
    # once it is, so receiving the probe means the publisher's messages will arrive too
    bus.publish("bench.latency", {"probe": True})
    latencies = []
    async for body in subscription:
        if body.get("probe"):
            print("ready", flush=True)
            continue
        latencies.append(time.time() - body["t"])
        if len(latencies) == int(sys.argv[2]):
            break
    await subscription.close()
    bus.close()
    print(json.dumps(latencies), flush=True)
asyncio.run(main())
"""


def open_bus(spec: str) -> MessageBus:
    """The bus ``spec`` names: ``memory://``, ``sqlite:PATH`` or an AMQP URL (its own vhost)."""
    if spec.startswith("memory:"):
        from workbench.messaging.local import LocalMessageBus

        return LocalMessageBus()
    if spec.startswith("sqlite:"):
        from workbench.messaging.sqlite_log import SqliteLogBus

        return SqliteLogBus(spec[len("sqlite:") :], "bench")
    from workbench.messaging.rabbitmq import RabbitMqBus

    return RabbitMqBus(spec)


def _messages(topic: str, count: int) -> list[OutgoingMessage]:
    payload = {"rtId": "6560a1b2c3d4e5f607182932", "ckTypeId": "Demo.Energy/EnergyMeter"}
    return [
        OutgoingMessage(topic, {**payload, "i": i, "voltage": 230.0 + i % 10}, key="bench.UPDATE")
        for i in range(count)
    ]


async def _throughput(bus: MessageBus, count: int, report: BenchReport) -> None:
    topic = f"bench.{time.time_ns()}"
    await bus.ensure_group(topic, f"g{time.time_ns()}")
    messages = _messages(topic, count)
    start = time.perf_counter()
    for i in range(0, count, _BATCH):
        await bus.publish_many(messages[i : i + _BATCH])
    batched = count / (time.perf_counter() - start)
    report.add("publish_many (confirmed batches of 1000)", batched, "msg/s")

    single = messages[: max(1, count // 20)]
    start = time.perf_counter()
    for message in single:
        await bus.publish_many([message])
    one_by_one = len(single) / (time.perf_counter() - start)
    report.add("publish, confirmed one at a time (baseline)", one_by_one, "msg/s")
    report.baseline = {"batched_over_single": round(batched / one_by_one, 2)}

    group = f"c{time.time_ns()}"
    await bus.ensure_group(topic, group)
    await bus.publish_many(messages)
    start = time.perf_counter()
    seen = 0
    async with bus.consume(topic, group=group, prefetch=500) as consumer:
        async for delivery in consumer:
            await delivery.ack()
            seen += 1
            if seen == count:
                break
    report.add("consume + ack (durable group)", count / (time.perf_counter() - start), "msg/s")


async def _latency(bus: MessageBus, spec: str, count: int, report: BenchReport) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SUBSCRIBER), spec, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        if ready.strip() != "ready":
            raise RuntimeError(f"the subscriber process did not start: {ready!r}")
        for i in range(count):
            bus.publish("bench.latency", {"t": time.time(), "i": i})
            await asyncio.sleep(0.005)
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        samples = json.loads(line)
    finally:
        child.kill()
        child.communicate(timeout=30)
    for name, value in percentiles(samples).items():
        report.add(f"latency to another process {name[:-3]}", value, "ms")


def bus(*, quick: bool = False, backend: str | None = None) -> BenchReport:
    """Run the bus benchmark (see the module docstring)."""
    count = 2_000 if quick else 50_000
    latency_count = 50 if quick else 500
    home = Path(tempfile.mkdtemp(prefix="wb-bench-bus-"))
    spec = backend or f"sqlite:{home / 'bench.bus.db'}"
    shown = redact_url(spec) if "://" in spec and not spec.startswith("memory") else spec
    report = BenchReport(
        "bus",
        quick,
        shown if backend else "embedded SQLite log",
        {"messages": count, "batch": _BATCH, "latencyMessages": latency_count},
    )
    bus = open_bus(spec)
    try:

        async def run() -> None:
            await _throughput(bus, count, report)
            if not spec.startswith("memory:"):
                await _latency(bus, spec, latency_count, report)

        asyncio.run(run())
    finally:
        bus.close()
        shutil.rmtree(home, ignore_errors=True)
    return report
