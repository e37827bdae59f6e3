"""An edge adapter (``workbench adapter run --edge``) on a real RabbitMQ, its link through a TCP
proxy that the test cuts: it keeps running its pipelines with the mesh unreachable (controller
on a closed port, bus link cut), stores what they produce in its outbox, survives a crash (also
one in the middle of a sync, with a batch published but its confirm lost), runs its last
configuration again without the controller, and delivers every point exactly once and in order
when the link is back, its ``LastSyncedSequenceNumber`` advancing to the last message."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from workbench.communication.adapter import AdapterRuntime
from workbench.communication.edge import (
    STREAM_POINTS_GROUP,
    EdgeState,
    EdgeTenant,
    wait_synced,
)
from workbench.communication.outbox import OutboxBus
from workbench.messaging.base import STREAM_POINTS, Delivery, MessageBus, OutgoingMessage
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.testing.servers import require_server_url
from workbench.testing.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.integration

TENANT_PREFIX = "edge"
ADAPTER = "6570c00000000000000000e1"
PIPELINE = "6570c00000000000000000e2"
TAGS = 10
DEFINITION = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SaveStreamDataInArchive@1
    path: $.updates
    ckTypeId: Demo.Energy/EnergyMeter
"""
CONFIGURATION = {
    "type": "configuration",
    "version": 1,
    "adapterConfiguration": None,
    "pipelines": [{"rtId": PIPELINE, "name": "poll-line-1", "definition": DEFINITION}],
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(second: int) -> dict[str, Any]:
    """One poll of TAGS registers at (simulated) second ``second``."""
    stamp = f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}+00:00"
    return {
        "updates": [
            {"rtId": f"{tag:024x}", "timestamp": stamp, "attributes": {"voltage": tag + second}}
            for tag in range(TAGS)
        ]
    }


def _second(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp)
    return moment.minute * 60 + moment.second


class LostConfirm:
    """The link of an edge box whose connection hangs after ``after`` batches: the next batch
    reaches RabbitMQ, its confirm never comes back (then the box crashes)."""

    def __init__(self, link: MessageBus, after: int) -> None:
        self.link = link
        self.after = after
        self.hung = asyncio.Event()

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        await self.link.publish_many(messages)
        if self.after == 0:
            self.hung.set()
            await asyncio.Event().wait()  # no confirm, ever
        self.after -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.link, name)


class Receiver:
    """The platform side: the stream service's durable group on ``stream-points``, keeping each
    message id once (as the group does for ids it acked)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.ids: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.deliveries = 0
        self.enough = asyncio.Event()
        self.expected = 0

    async def run(self) -> None:
        async with self.bus.consume(
            STREAM_POINTS, "#", group=STREAM_POINTS_GROUP, prefetch=200
        ) as consumer:
            async for delivery in consumer:
                await self._keep(delivery)

    async def _keep(self, delivery: Delivery) -> None:
        self.deliveries += 1
        if delivery.id not in self.ids:
            self.ids.append(delivery.id)
            self.bodies.append(delivery.body)
        await delivery.ack()
        if self.expected and len(self.ids) >= self.expected:
            self.enough.set()


class Edge:
    """One life of the edge adapter process: its link (through the proxy), outbox and runtime."""

    def __init__(self, state: EdgeState, url: str, tenant: str, *, hang_after: int | None = None):
        self.rabbit = RabbitMqBus(url, tenant, connect_timeout=1.0, max_backoff=0.5)
        link: Any = self.rabbit if hang_after is None else LostConfirm(self.rabbit, hang_after)
        self.link = link
        self.bus: OutboxBus = state.open_bus(link, batch=5)
        self.runtime = AdapterRuntime(
            controller_url=f"http://127.0.0.1:{_closed_port()}",  # the controller is away
            tenant_id=tenant,
            adapter_rt_id=ADAPTER,
            tenant=EdgeTenant(tenant, self.bus),
            bus=self.bus,
            edge=state,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.runtime.run(self.stop))

    async def produce(self, seconds: range) -> None:
        for second in seconds:
            await self.produce_data(_poll(second))

    async def produce_data(self, data: dict[str, Any]) -> None:
        """One poll: an execution of the pipeline (it must complete, link or no link)."""
        result = await self.runtime.execute(PIPELINE, data, "Scheduled")
        assert result.status == "Completed", result.error

    async def crash(self) -> None:
        """Gone without a goodbye: nothing flushed, only what the outbox file holds survives."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.bus.outbox.close()
        self.rabbit.close()


def _proxied(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def test_edge_adapter_offline_restart_and_sync_exactly_once_in_order(tmp_path: Path) -> None:
    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    admin = RabbitMqAdmin(
        require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API")
    )
    tenant = f"{TENANT_PREFIX}-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant)
    target = urlsplit(url)
    platform = RabbitMqBus(url, tenant)

    async def scenario(proxy: TcpProxy) -> None:
        link_url = _proxied(url, proxy)
        await platform.ensure_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        receiver = Receiver(platform)
        receiver.expected = 70  # polls 0..69, each one message
        receiving = asyncio.create_task(receiver.run())
        state = EdgeState(tmp_path / "edge")

        # first life: configured by the controller, online
        edge = Edge(state, link_url, tenant)
        await edge.runtime.configure(dict(CONFIGURATION))
        await edge.produce(range(0, 20))
        assert await wait_synced(edge.bus) == 20
        assert edge.runtime.last_synced_sequence == 20

        # the link is cut: the pipelines go on, their points wait in the outbox
        proxy.cut()
        await edge.produce(range(20, 50))
        assert edge.bus.outbox.backlog() == 30
        assert edge.bus.outbox.delivered_sequence == 20
        await edge.crash()

        # second life, still offline: the last configuration runs without the controller
        edge = Edge(state, link_url, tenant, hang_after=2)
        await asyncio.wait_for(edge.runtime.configured.wait(), 30)
        assert list(edge.runtime.pipelines) == [PIPELINE]
        await edge.produce(range(50, 60))
        assert edge.bus.outbox.backlog() == 40
        # the link returns; two batches are confirmed, the third is published, then the crash
        proxy.restore()
        await asyncio.wait_for(edge.link.hung.wait(), 60)
        assert edge.bus.outbox.delivered_sequence == 30
        await edge.crash()

        # third life: back online; the backlog and new polls are delivered
        edge = Edge(state, link_url, tenant)
        await asyncio.wait_for(edge.runtime.configured.wait(), 30)
        assert edge.bus.outbox.backlog() == 30
        await edge.produce(range(60, 70))
        assert await wait_synced(edge.bus) == 70
        await asyncio.wait_for(receiver.enough.wait(), 60)
        edge.stop.set()
        await edge.task
        edge.bus.outbox.close()
        edge.rabbit.close()
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving

        # every poll once, in the order produced; every point once
        assert [_second(b["points"][0]["timestamp"]) for b in receiver.bodies] == list(range(70))
        keys = [
            (p["rtId"], p["timestamp"], "voltage") for b in receiver.bodies for p in b["points"]
        ]
        assert len(keys) == len(set(keys)) == 70 * TAGS
        assert all(b["ckTypeId"] == "Demo.Energy/EnergyMeter" for b in receiver.bodies)
        # the batch whose confirm was lost went to RabbitMQ twice at most; no other repeats
        assert receiver.deliveries - 70 <= 5
        assert proxy.connections >= 3  # one link per life that reached the bus

    try:
        with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
            asyncio.run(asyncio.wait_for(scenario(proxy), 240))
    finally:
        platform.close()
        admin.delete_tenant(tenant)
        admin.close()
