"""Stream points published on the bus (``stream-points``) land in the tenant's stream store:
batched, bad messages dead-lettered with their reason, nothing lost or doubled when the consumer
stops between a write and its ack (real RabbitMQ)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import METER_1, METER_2
from workbench.communication.edge import stream_points_message
from workbench.messaging.base import STREAM_POINTS, MessageBus, OutgoingMessage
from workbench.messaging.local import LocalMessageBus
from workbench.streams.bus_ingest import (
    STREAM_POINTS_GROUP,
    StreamPointsConsumer,
    stream_points_topic,
)
from workbench.testing.servers import rabbitmq_tenant

METER = "Demo.Energy/EnergyMeter"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
PER_MESSAGE = 20


def _message(topic: str, index: int) -> OutgoingMessage:
    points = [
        {
            "rtId": METER_1 if j % 2 else METER_2,
            "timestamp": (T0 + timedelta(seconds=index * PER_MESSAGE + j)).isoformat(),
            "voltage": 230.0 + j,
        }
        for j in range(PER_MESSAGE)
    ]
    made = stream_points_message(METER, points)  # what an edge adapter publishes
    return OutgoingMessage(topic, made.body, made.key, made.id)


def _stored(demo: Any) -> int:
    result = demo.streams(METER).read(T0, T0 + timedelta(days=1), first=None)
    return int(result.to_arrow().num_rows)


async def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class CountingWriter:
    """The tenant's stream write, remembering the size of every write."""

    def __init__(self, demo: Any) -> None:
        self.demo = demo
        self.sizes: list[int] = []

    def __call__(self, ck_type_id: str, points: list[Mapping[str, Any]]) -> int:
        written: int = self.demo.streams(ck_type_id).write(points)
        self.sizes.append(len(points))
        return written


def test_points_arrive_batched_and_a_bad_message_is_dead_lettered(demo: Any) -> None:
    async def scenario() -> None:
        bus = LocalMessageBus()
        topic = stream_points_topic(demo.id)
        await bus.ensure_group(topic, STREAM_POINTS_GROUP)
        poison = OutgoingMessage(
            topic,
            {
                "ckTypeId": METER,
                "points": [{"rtId": "6560a1b2c3d4e5f6071829ff", "timestamp": T0.isoformat()}],
            },
        )
        await bus.publish_many([_message(topic, i) for i in range(40)])
        writer = CountingWriter(demo)
        consumer = StreamPointsConsumer(bus, topic, writer, max_points=300, linger_seconds=1.0)
        task = asyncio.create_task(consumer.run())
        try:
            await _until(lambda: consumer.counts.messages == 40, "40 messages written")
            # batched: 15 messages (300 points) a write
            assert writer.sizes == [300, 300, 200]
            # a bad message spoils only the batch it is in: the others of it are written
            await bus.publish_many([_message(topic, 40), poison, _message(topic, 41)])
            await _until(lambda: consumer.counts.dead == 1, "the poison dead-lettered")
            await _until(lambda: consumer.counts.messages == 42, "the good ones written")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert _stored(demo) == 42 * PER_MESSAGE
        dead = await bus.dead_letters(topic, STREAM_POINTS_GROUP)
        assert [d.id for d in dead] == [poison.id]
        assert "6560a1b2c3d4e5f6071829ff" in dead[0].reason
        assert await bus.pending(topic, STREAM_POINTS_GROUP) == 0

    asyncio.run(scenario())


class CrashingWriter(CountingWriter):
    """Writes, then on write number ``crash_at`` stops before returning (so the batch is in the
    store but never acked): the consumer dies there."""

    def __init__(self, demo: Any, crash_at: int, crashed: Callable[[], None]) -> None:
        super().__init__(demo)
        self.crash_at = crash_at
        self.crashed = crashed
        self.release = threading.Event()

    def __call__(self, ck_type_id: str, points: list[Mapping[str, Any]]) -> int:
        written = super().__call__(ck_type_id, points)
        if len(self.sizes) == self.crash_at:
            self.crashed()
            self.release.wait(30)
        return written


@pytest.mark.integration
def test_no_point_lost_or_doubled_when_the_consumer_restarts_on_rabbitmq(demo: Any) -> None:
    from workbench.messaging.rabbitmq import RabbitMqBus

    async def scenario(url: str, tenant: str) -> None:
        loop = asyncio.get_running_loop()
        publisher: MessageBus = RabbitMqBus(url, tenant)
        await publisher.ensure_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        await publisher.publish_many([_message(STREAM_POINTS, i) for i in range(30)])

        crashed = asyncio.Event()
        first_bus = RabbitMqBus(url, tenant)
        writer = CrashingWriter(demo, 3, lambda: loop.call_soon_threadsafe(crashed.set))
        first = StreamPointsConsumer(first_bus, STREAM_POINTS, writer, max_points=100)
        first_task = asyncio.create_task(first.run())
        await asyncio.wait_for(crashed.wait(), 30)
        first_task.cancel()  # the process dies after its third write, before the acks
        await asyncio.gather(first_task, return_exceptions=True)
        await first_bus.aclose()
        writer.release.set()
        unacked_points = writer.sizes[-1]

        # more points while no consumer runs: the group keeps them
        await publisher.publish_many([_message(STREAM_POINTS, i) for i in range(30, 60)])
        second_bus = RabbitMqBus(url, tenant)
        again = CountingWriter(demo)
        second = StreamPointsConsumer(second_bus, STREAM_POINTS, again)
        second_task = asyncio.create_task(second.run())
        try:
            await _until(
                lambda: first.counts.messages + second.counts.messages == 60,
                "every message written and acked",
            )
        finally:
            second_task.cancel()
            await asyncio.gather(second_task, return_exceptions=True)
        assert await publisher.pending(STREAM_POINTS, STREAM_POINTS_GROUP) == 0
        await second_bus.aclose()
        await publisher.aclose()
        # the batch written but not acked came again and was written again; the upsert on
        # (rtId, timestamp) kept one copy of each point
        assert sum(writer.sizes) + sum(again.sizes) == 60 * PER_MESSAGE + unacked_points
        assert _stored(demo) == 60 * PER_MESSAGE

    with rabbitmq_tenant("ingest") as (url, tenant):
        asyncio.run(scenario(url, tenant))


def test_stream_ingest_consumes_for_every_tenant_also_new_ones(demo: Any) -> None:
    from workbench.communication import edge
    from workbench.services.asset_repository.stream_ingest import StreamIngest

    assert edge.STREAM_POINTS_GROUP == STREAM_POINTS_GROUP  # the group edge adapters create
    wb = demo._workbench

    async def scenario() -> None:
        bus = LocalMessageBus()
        ingest = StreamIngest(wb, bus, scan_seconds=0.05, linger_seconds=0.01)
        ingest.start()
        try:
            await _until(lambda: demo.id in ingest.consumers, "a consumer for energy")
            later = await asyncio.to_thread(wb.tenants.create, "later")
            await _until(lambda: later.id in ingest.consumers, "a consumer for the new tenant")
            topic = stream_points_topic(demo.id)
            await bus.ensure_group(topic, STREAM_POINTS_GROUP)
            await bus.publish_many([_message(topic, 0)])
            await _until(lambda: ingest.consumers[demo.id].counts.messages == 1, "the points")
            await asyncio.to_thread(wb.tenants.delete, "later", confirm=True)
            await _until(lambda: "later" not in ingest.consumers, "the deleted tenant dropped")
        finally:
            await ingest.stop()
        assert _stored(demo) == PER_MESSAGE

    asyncio.run(scenario())


def test_the_asset_repository_writes_the_points_of_its_tenants(demo: Any) -> None:
    import httpx

    from workbench.messaging.registry import embedded_bus_url
    from workbench.messaging.tenants import TenantBuses
    from workbench.services import create_app
    from workbench.testing.http import ServiceServer

    wb = demo._workbench
    url = embedded_bus_url(wb.home)  # the bus of `workbench up`'s processes
    topic = stream_points_topic(demo.id)
    adapter_side = TenantBuses(url)  # another process's view of the same log
    asyncio.run(adapter_side.ensure_group(topic, STREAM_POINTS_GROUP))
    app = create_app(workbench=wb, no_auth=True, bus=TenantBuses(url))
    with ServiceServer(app) as server:
        asyncio.run(adapter_side.publish_many([_message(topic, 0), _message(topic, 1)]))

        def answered() -> int:
            rows = httpx.get(
                f"{server.url}/tenants/{demo.id}/streams/{METER}",
                params={"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()},
                headers={"Accept": "application/x-ndjson"},
                timeout=10,
            )
            assert rows.status_code == 200, rows.text
            return len(rows.text.splitlines())

        asyncio.run(_until(lambda: answered() == 2 * PER_MESSAGE, "the points served"))
    adapter_side.close()
