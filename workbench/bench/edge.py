"""``edge-offline`` (issue 14): an edge adapter's link cut for real minutes while its device
keeps producing.

The edge adapter (:class:`~workbench.communication.adapter.AdapterRuntime` with an
:class:`~workbench.communication.edge.EdgeState`, its controller away) polls ``tags`` values
once per second (``hz``) of the wall clock and writes each poll with ``SaveStreamDataInArchive@1``
into its outbox; its bus link to RabbitMQ goes through a
:class:`~workbench.testing.tcp_proxy.TcpProxy`. The run: online for a few seconds, the proxy cut
for ``minutes`` (the polls go on and are buffered), restored (the polls go on while the backlog
drains). The platform side is the stream service's durable group on ``stream-points``; it counts
every message id and point once, and checks that the polls arrive in the order produced.

Reported: points buffered during the cut, the outbox at the restore (messages and bytes on
disk), the time to drain it, points lost and duplicated (both must be 0), dropped by the
outbox's bounds, the order, the process's peak memory and the load average (the machine is
shared). The same-run baseline is the polls delivered online (the drain rate against the
online rate is what a backlog costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench.bench.common import BenchReport
from workbench.bench.rabbitmq import amqp_url, bench_vhost

__all__ = ["edge_offline"]

METER = "Demo.Energy/EnergyMeter"
ADAPTER = "6570c00000000000000000f1"
PIPELINE = "6570c00000000000000000f2"
DEFINITION = f"""
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SaveStreamDataInArchive@1
    path: $.updates
    ckTypeId: {METER}
"""
START = datetime(2026, 1, 1, tzinfo=UTC)
#: seconds online before the cut and after the drain
ONLINE_SECONDS = 5.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proxied(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}" if credentials else host))


def _poll(index: int, tags: int, hz: float) -> dict[str, Any]:
    stamp = (START + timedelta(seconds=index / hz)).isoformat()
    return {
        "updates": [
            {"rtId": f"{tag:024x}", "timestamp": stamp, "attributes": {"voltage": tag + index}}
            for tag in range(tags)
        ]
    }


class _Platform:
    """The stream service's group on ``stream-points``: each message id and point once."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.ids: set[str] = set()
        self.polls: list[int] = []  # poll index of each new message, in arrival order
        self.points: set[tuple[str, str]] = set()
        self.deliveries = 0
        self.repeated_points = 0
        self.changed = asyncio.Event()

    async def run(self, hz: float) -> None:
        from workbench.communication.edge import STREAM_POINTS_GROUP
        from workbench.messaging.base import STREAM_POINTS

        async with self.bus.consume(
            STREAM_POINTS, "#", group=STREAM_POINTS_GROUP, prefetch=500
        ) as consumer:
            async for delivery in consumer:
                self.deliveries += 1
                if delivery.id not in self.ids:
                    self.ids.add(delivery.id)
                    points = delivery.body["points"]
                    moment = datetime.fromisoformat(points[0]["timestamp"])
                    self.polls.append(round((moment - START).total_seconds() * hz))
                    for point in points:
                        key = (point["rtId"], point["timestamp"])
                        if key in self.points:
                            self.repeated_points += 1
                        self.points.add(key)
                await delivery.ack()
                self.changed.set()

    async def wait_for(self, polls: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.ids) < polls:
                await self.changed.wait()
                self.changed.clear()


def edge_offline(
    quick: bool = False,
    backend: str | None = None,
    minutes: float | None = None,
    tags: int = 100,
    hz: float = 1.0,
) -> BenchReport:
    """Cut an edge adapter's bus link for ``minutes`` (quick: 5 s) while it polls ``tags``
    values at ``hz``; restore it and count every point once and in order."""
    from workbench.communication.adapter import AdapterRuntime
    from workbench.communication.edge import (
        STREAM_POINTS_GROUP,
        EdgeState,
        EdgeTenant,
        wait_synced,
    )
    from workbench.messaging.base import STREAM_POINTS
    from workbench.messaging.rabbitmq import RabbitMqBus
    from workbench.testing.tcp_proxy import tcp_proxy

    url = amqp_url(backend)
    cut_seconds = 5.0 if quick and minutes is None else (minutes or 10.0) * 60.0
    report = BenchReport(
        "edge-offline",
        quick,
        "RabbitMQ " + (urlsplit(url).hostname or ""),
        {"tags": tags, "hz": hz, "cutSeconds": cut_seconds, "onlineSeconds": ONLINE_SECONDS},
    )
    target = urlsplit(url)
    directory = Path(tempfile.mkdtemp(prefix="wb-bench-edge-"))
    figures: dict[str, float] = {}

    async def scenario(tenant: str, proxy: Any) -> None:
        platform_bus = RabbitMqBus(url, tenant)
        platform = _Platform(platform_bus)
        link = RabbitMqBus(_proxied(url, proxy.port), tenant, connect_timeout=1.0, max_backoff=0.5)
        state = EdgeState(directory / "edge")
        bus = state.open_bus(link)
        runtime = AdapterRuntime(
            controller_url=f"http://127.0.0.1:{_closed_port()}",  # the controller is away too
            tenant_id=tenant,
            adapter_rt_id=ADAPTER,
            tenant=EdgeTenant(tenant, bus),
            bus=bus,
            edge=state,
        )
        stop = asyncio.Event()
        await platform_bus.ensure_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        receiving = asyncio.create_task(platform.run(hz))
        running = asyncio.create_task(runtime.run(stop))
        await runtime.configure(
            {
                "type": "configuration",
                "version": 1,
                "pipelines": [{"rtId": PIPELINE, "name": "poll", "definition": DEFINITION}],
            }
        )
        produced = 0
        failed = 0
        producing = True

        async def device() -> None:  # the polls, on the wall clock, whatever the link does
            nonlocal produced, failed
            began = time.monotonic()
            while producing:
                result = await runtime.execute(PIPELINE, _poll(produced, tags, hz), "Scheduled")
                failed += result.status != "Completed"
                produced += 1
                await asyncio.sleep(max(0.0, began + produced / hz - time.monotonic()))

        polling = asyncio.create_task(device())
        await asyncio.sleep(ONLINE_SECONDS)
        await wait_synced(bus, timeout=60)
        online_polls = produced
        proxy.cut()
        cut_at = time.monotonic()
        await asyncio.sleep(cut_seconds)
        figures["bufferedMessages"] = bus.outbox.backlog()
        figures["outboxBytes"] = sum(
            p.stat().st_size for p in state.directory.glob("outbox.sqlite*") if p.exists()
        )
        figures["pollsDuringCut"] = produced - online_polls
        figures["cutSeconds"] = time.monotonic() - cut_at
        before_restore = produced
        proxy.restore()
        restored = time.monotonic()
        await platform.wait_for(before_restore, timeout=max(120.0, cut_seconds))
        figures["drainSeconds"] = time.monotonic() - restored
        await wait_synced(bus, timeout=120)
        figures["syncedSeconds"] = time.monotonic() - restored
        await asyncio.sleep(ONLINE_SECONDS)
        producing = False
        await polling
        await wait_synced(bus, timeout=120)
        await platform.wait_for(produced, timeout=120)
        figures["produced"] = produced
        figures["failed"] = failed
        figures["dropped"] = bus.outbox.dropped
        figures["lastSynced"] = bus.outbox.delivered_sequence
        stop.set()
        await running
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        figures["received"] = len(platform.ids)
        figures["points"] = len(platform.points)
        figures["repeatedPoints"] = platform.repeated_points
        figures["redeliveries"] = platform.deliveries - len(platform.ids)
        figures["inOrder"] = float(platform.polls == list(range(produced)))
        figures["reconnects"] = link.reconnects
        await bus.aclose()
        platform_bus.close()

    try:
        with (
            bench_vhost("bench-edge") as tenant,
            tcp_proxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy,
        ):
            asyncio.run(scenario(tenant, proxy))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    produced = int(figures["produced"])
    expected_points = produced * tags
    lost = expected_points - int(figures["points"])
    report.baseline = {
        "what": "the same polls delivered with the link up (before the cut and after the drain)",
        "pollsPerSecond": hz,
    }
    buffered_points = figures["bufferedMessages"] * tags
    report.add("cut", figures["cutSeconds"], "s")
    report.add("polls during the cut", figures["pollsDuringCut"], "polls")
    report.add("points buffered at the restore", buffered_points, "points")
    report.add("outbox at the restore", figures["bufferedMessages"], "messages")
    report.add("outbox file at the restore", figures["outboxBytes"] / 2**20, "MiB")
    report.add("time to drain (platform has every earlier poll)", figures["drainSeconds"], "s")
    report.add("time to sync (outbox empty)", figures["syncedSeconds"], "s")
    drain_rate = buffered_points / figures["drainSeconds"] if figures["drainSeconds"] else 0.0
    report.add("drain rate", drain_rate, "points/s")
    report.add("drain rate / online rate", drain_rate / (tags * hz), "x")
    report.add("polls produced", float(produced), "polls")
    report.add(
        "polls that failed at the edge", figures["failed"], "polls", "= 0", not figures["failed"]
    )
    report.add("points lost", float(lost), "points", "= 0", lost == 0)
    report.add(
        "points duplicated",
        figures["repeatedPoints"],
        "points",
        "= 0",
        figures["repeatedPoints"] == 0,
    )
    report.add(
        "dropped by the outbox bounds",
        figures["dropped"],
        "messages",
        "= 0",
        figures["dropped"] == 0,
    )
    report.add("in order", figures["inOrder"], "1 = yes", "= 1", figures["inOrder"] == 1.0)
    report.add("redelivered messages (dropped by id)", figures["redeliveries"], "messages")
    report.add(
        "LastSyncedSequenceNumber",
        figures["lastSynced"],
        "seq",
        f"= {produced}",
        figures["lastSynced"] == produced,
    )
    report.add("link reconnects", figures["reconnects"], "reconnects")
    report.add(
        "peak memory (this process)",
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "MiB",
    )
    report.add("load average (1 min)", os.getloadavg()[0], "")
    return report
