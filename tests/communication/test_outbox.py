"""The edge adapter's outbox: with the bus link cut it buffers (durably, across its own
restart), and when the link is back delivers the backlog in order, exactly once per id, while
new data keeps flowing. The link is a real bus (the embedded SQLite log; RabbitMQ when
WORKBENCH_TEST_AMQP_URL is set) behind a switch that cuts it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from workbench.communication.outbox import Outbox, OutboxBus
from workbench.errors import BackendUnavailable
from workbench.messaging.base import MessageBus, OutgoingMessage
from workbench.messaging.sqlite_log import SqliteLogBus

pytestmark = pytest.mark.anyio

TOPIC = "stream-points"
GROUP = "stream-store"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Link:
    """The bus as the edge box sees it: a real bus behind a switch. ``lose_confirms`` makes
    the next publishes reach the bus but fail before the confirm (the worst case for
    duplicates)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.up = True
        self.lose_confirms = 0
        self.published = 0

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if not self.up:
            raise BackendUnavailable("link down (test)")
        await self.bus.publish_many(messages)
        self.published += len(messages)
        if self.lose_confirms:
            self.lose_confirms -= 1
            raise BackendUnavailable("confirm lost (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)


def _poll(second: int, tags: int = 100) -> dict[str, Any]:
    """One poll of ``tags`` registers at simulated second ``second``: one message, many points."""
    return {
        "seq": second,
        "points": [
            {
                "rtId": f"{tag:024x}",
                "attribute": "value",
                "timeStamp": second,
                "value": tag + second,
            }
            for tag in range(tags)
        ],
    }


async def _drain(bus: MessageBus, expected: int) -> tuple[list[Any], int]:
    """What the receiver keeps (deduplicated by message id, as the stream store does by
    rtId+timeStamp+attribute) and how many deliveries it saw."""
    got: list[Any] = []
    seen: set[str] = set()
    deliveries = 0
    consumer = bus.consume(TOPIC, "#", group=GROUP, prefetch=500)
    async with consumer:
        async with asyncio.timeout(120):
            async for delivery in consumer:
                deliveries += 1
                if delivery.id not in seen:
                    seen.add(delivery.id)
                    got.append(delivery.body)
                await delivery.ack()
                if len(got) >= expected:
                    break
    return got, deliveries


@pytest.fixture
def platform_bus(tmp_path: Path) -> Any:
    url = os.environ.get("WORKBENCH_TEST_AMQP_URL")
    management = os.environ.get("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL")
    if url and management:
        from workbench.messaging.rabbitmq import RabbitMqBus
        from workbench.messaging.rabbitmq_admin import RabbitMqAdmin

        tenant = f"outbox-{secrets.token_hex(3)}"
        admin = RabbitMqAdmin(management)
        try:
            admin.ensure_tenant(tenant)
        finally:
            admin.close()
        return RabbitMqBus(url, tenant)
    return SqliteLogBus(tmp_path / "platform-bus.sqlite", "acme", poll_interval=0.02)


async def test_link_cut_for_ten_minutes_of_polls(tmp_path: Path, platform_bus: MessageBus) -> None:
    await platform_bus.ensure_group(TOPIC, GROUP)
    clock = [1_000_000.0]
    outbox_file = tmp_path / "edge" / "outbox.sqlite"
    link = Link(platform_bus)
    edge = OutboxBus(link, Outbox(outbox_file, clock=lambda: clock[0]))  # type: ignore[arg-type]
    stop = asyncio.Event()
    deliverer = asyncio.create_task(edge.run(stop, poll_seconds=0.05))

    # online: 60 s of polls flow straight through
    for second in range(60):
        await edge.publish_confirmed(TOPIC, _poll(second), key="line1", message_id=f"poll-{second}")
    async with asyncio.timeout(30):
        while edge.outbox.backlog():
            await asyncio.sleep(0.02)
    # the link is cut; 10 minutes of 1 Hz polls of 100 tags (simulated clock) are buffered
    link.up = False
    for second in range(60, 660):
        clock[0] += 1
        await edge.publish_confirmed(TOPIC, _poll(second), key="line1", message_id=f"poll-{second}")
    await asyncio.sleep(0.3)
    assert edge.online is False
    assert edge.outbox.backlog() == 600
    # the edge adapter restarts with its backlog (the outbox file is all it keeps)
    stop.set()
    await deliverer
    edge.outbox.close()
    outbox = Outbox(outbox_file, clock=lambda: clock[0])
    assert outbox.backlog() == 600
    assert outbox.delivered_sequence == 60
    edge = OutboxBus(link, outbox)  # type: ignore[arg-type]
    synced: list[int] = []
    edge.on_synced = synced.append
    stop = asyncio.Event()
    deliverer = asyncio.create_task(edge.run(stop, poll_seconds=0.05))
    # the link returns; the first batch reaches the bus but its confirm is lost: re-sent
    link.lose_confirms = 1
    link.up = True
    for second in range(660, 700):  # new data keeps flowing meanwhile
        await edge.publish_confirmed(TOPIC, _poll(second), key="line1", message_id=f"poll-{second}")
    got, deliveries = await _drain(platform_bus, 700)
    stop.set()
    await deliverer
    assert link.published > 700  # one batch went twice to the bus ...
    assert [m["seq"] for m in got] == list(range(700))  # ... kept in order, each id once
    assert deliveries - 700 <= link.published - 700  # the bus's groups drop acked ids
    assert sum(len(m["points"]) for m in got) == 70_000
    assert outbox.backlog() == 0
    assert outbox.delivered_sequence == 700
    assert synced[-1] == 700  # LastSyncedSequenceNumber
    assert outbox.dropped == 0
    outbox.close()
    await platform_bus.aclose()


def test_backlog_bounds_drop_the_oldest_and_count(tmp_path: Path) -> None:
    clock = [0.0]
    outbox = Outbox(
        tmp_path / "o.sqlite", max_messages=100, max_age_seconds=60, clock=lambda: clock[0]
    )
    for i in range(150):
        outbox.put(TOPIC, {"i": i}, message_id=f"m{i}")
    assert outbox.backlog() == 100
    assert outbox.dropped == 50
    assert [m.body["i"] for _, m in outbox.pending(3)] == [50, 51, 52]
    clock[0] = 61.0  # everything so far is past the age bound
    outbox.put(TOPIC, {"i": 150}, message_id="m150")
    assert [m.body["i"] for _, m in outbox.pending()] == [150]
    assert outbox.dropped == 150
    # the same id again is stored once
    outbox.put(TOPIC, {"i": 150}, message_id="m150")
    assert outbox.backlog() == 1
    outbox.close()
    assert Outbox(tmp_path / "o.sqlite").dropped == 150  # counted across restarts


def test_bodies_come_back_as_the_stdlib_json_would_give_them(tmp_path: Path) -> None:
    import datetime
    import sqlite3

    outbox = Outbox(tmp_path / "outbox.sqlite")
    when = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)
    outbox.put("t", {"at": when, 7: "seven", "big": 2**70, "text": "Grüße"})
    outbox.close()
    # a row an older release wrote with the stdlib encoder: NaN is not JSON, but it was stored
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    db.execute(
        "INSERT INTO messages(id, topic, key, body, headers, created) VALUES (?, ?, ?, ?, ?, ?)",
        ("old", "t", "", '{"value":NaN}', "{}", 0.0),
    )
    db.commit()
    db.close()
    reopened = Outbox(tmp_path / "outbox.sqlite", max_age_seconds=10**12)
    bodies = [m.body for _, m in reopened.pending()]
    assert bodies[0] == {"at": str(when), "7": "seven", "big": 2**70, "text": "Grüße"}
    assert bodies[1]["value"] != bodies[1]["value"]  # NaN
    reopened.close()


class _Recorder:
    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        self.bodies.extend(m.body for m in messages)


async def test_a_wire_bus_gets_the_stored_rows_others_the_values(tmp_path: Path) -> None:
    from workbench.messaging.codec import EncodedBody, decode_body

    body = {"ckTypeId": "Demo/Meter", "points": [{"rtId": "a", "v": 1.5, "text": "Grüße"}]}
    for encoded in (True, False):
        outbox = Outbox(tmp_path / f"o-{encoded}.sqlite")
        outbox.put(TOPIC, body, message_id="m1")
        link = _Recorder()
        assert await outbox.deliver(link.publish_many, encoded=encoded) == 1
        (sent,) = link.bodies
        if encoded:  # JSON as stored, decoded by the receiver to the same value
            assert isinstance(sent, EncodedBody)
            assert decode_body(sent.data) == body
        else:
            assert sent == body
        assert outbox.backlog() == 0
        outbox.close()


async def test_the_outbox_bus_sends_stored_rows_to_a_bus_of_wire_bodies(tmp_path: Path) -> None:
    bus = SqliteLogBus(tmp_path / "platform-bus.sqlite", "acme", poll_interval=0.02)
    assert bus.wire_bodies
    await bus.ensure_group(TOPIC, GROUP)
    outbox_bus = OutboxBus(bus, Outbox(tmp_path / "o.sqlite"))
    stop = asyncio.Event()
    runner = asyncio.create_task(outbox_bus.run(stop))
    polls = [_poll(second, tags=3) for second in range(5)]
    for poll in polls:
        outbox_bus.publish(TOPIC, poll)
    got, _ = await _drain(bus, len(polls))
    stop.set()
    await runner
    assert got == polls
    await outbox_bus.aclose()


def test_a_batch_id_is_derived_from_its_points_as_before() -> None:
    from workbench.communication.edge import stream_points_message

    points = [
        {"rtId": "6560a1b2c3d4e5f607182932", "timestamp": "2026-03-01T00:00:00+00:00", "b": 1},
        {"rtId": "6560a1b2c3d4e5f607182932", "timeStamp": "2026-03-01T00:00:01Z", "a": 2, "b": 3},
        {"rtId": "ü", "timestamp": 1.5},
    ]
    message = stream_points_message("Demo.Energy/EnergyMeter", points)
    # the id the releases before computed (point by point into the hash): a batch re-sent
    # after an upgrade is still dropped by the bus's groups
    assert message.id == "points-fa6349dcc44c7aca3d3ec486"
    other = stream_points_message("Demo.Energy/EnergyMeter", [{**points[0], "c": 4}, *points[1:]])
    assert other.id != message.id  # another attribute, another message
