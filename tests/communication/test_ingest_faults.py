"""The RabbitMQ leg of ingest under faults, end to end on real servers: an edge adapter's
pipeline → its outbox → RabbitMQ → the stream service's consumer (``StreamPointsConsumer``) →
the stream store. RabbitMQ is restarted mid-ingest (``rabbitmqctl stop_app``/``start_app``:
every connection dropped, queues recovered from disk) and the adapter's link is cut: 0 points
lost, 0 duplicated; values of two protocols for one entity in the same second both land. And the
Asset Repository (a real process) is stopped and started again mid-ingest: 0 points lost."""

from __future__ import annotations

import asyncio
import math
import secrets
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.communication.test_edge_adapter import CONFIGURATION, Edge, _proxied
from tests.conftest import METER_1, METER_2
from workbench.communication.edge import STREAM_POINTS_GROUP, EdgeState, wait_synced
from workbench.messaging.base import STREAM_POINTS
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.streams.bus_ingest import StreamPointsConsumer
from workbench.testing.rabbitmq import restart_rabbitmq
from workbench.testing.servers import require_server_url
from workbench.testing.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.integration

METER = "Demo.Energy/EnergyMeter"
SECONDS = 60
#: seconds in which a second protocol (another pipeline) reports ``current`` for the meters
BOTH = range(0, SECONDS, 5)


def _stamp(second: int) -> str:
    return f"2026-02-01T08:{second // 60:02d}:{second % 60:02d}+00:00"


def _poll(second: int, attribute: str, value: float) -> dict[str, Any]:
    return {
        "updates": [
            {"rtId": rt_id, "timestamp": _stamp(second), "attributes": {attribute: value + i}}
            for i, rt_id in enumerate((METER_1, METER_2))
        ]
    }


def _points(second: int) -> list[dict[str, Any]]:
    """The stream points of one poll, as a stream-points message carries them."""
    return [
        {"rtId": rt_id, "timestamp": _stamp(second), "voltage": 230.0 + second + i}
        for i, rt_id in enumerate((METER_1, METER_2))
    ]


def test_rabbitmq_restart_and_a_cut_link_mid_ingest_lose_and_duplicate_nothing(
    tmp_path: Path, demo: Any
) -> None:
    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    admin = RabbitMqAdmin(
        require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API")
    )
    require_server_url("RABBITMQ_DATA_DIR", "RabbitMQ of .ci/rabbitmq.sh (to restart it)")
    tenant = f"faults-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant)
    target = urlsplit(url)
    platform = RabbitMqBus(url, tenant, connect_timeout=5.0, max_backoff=1.0)
    streams = demo.streams(METER)

    async def produce(edge: Edge, seconds: range) -> None:
        for second in seconds:
            await edge.produce_data(_poll(second, "Voltage", 230.0 + second))
            if second in BOTH:
                await edge.produce_data(_poll(second, "Current", 5.0 + second))

    def everything_written() -> bool:
        frame = streams.read().to_pandas()
        return len(frame) >= SECONDS * 2 and int(frame["current"].notna().sum()) >= 2 * len(BOTH)

    async def scenario(proxy: Any) -> StreamPointsConsumer:
        await platform.ensure_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        consumer = StreamPointsConsumer(
            platform, STREAM_POINTS, lambda ck, points: streams.write(points), linger_seconds=0.05
        )
        consuming = asyncio.create_task(consumer.run())
        edge = Edge(EdgeState(tmp_path / "edge"), _proxied(url, proxy), tenant)
        await edge.runtime.configure(dict(CONFIGURATION))
        await produce(edge, range(0, 20))
        await wait_synced(edge.bus)
        # RabbitMQ restarts while the adapter goes on polling
        restart = asyncio.create_task(asyncio.to_thread(restart_rabbitmq))
        await produce(edge, range(20, 40))
        await restart
        # then the adapter's link is cut for a while
        proxy.cut()
        await produce(edge, range(40, 50))
        proxy.restore()
        await produce(edge, range(50, SECONDS))
        await wait_synced(edge.bus, timeout=180)
        async with asyncio.timeout(120):  # until the consumer wrote everything
            while not await asyncio.to_thread(everything_written):
                await asyncio.sleep(0.1)
        assert platform.reconnects >= 1  # the restart dropped the consumer's connection ...
        assert edge.rabbit.reconnects >= 2  # ... and the adapter's, then the cut did
        edge.stop.set()
        await edge.task
        edge.bus.outbox.close()
        edge.rabbit.close()
        consuming.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consuming
        return consumer

    try:
        with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
            consumer = asyncio.run(asyncio.wait_for(scenario(proxy), 420))
    finally:
        platform.close()
        admin.delete_tenant(tenant)
        admin.close()

    frame = streams.read().to_pandas()
    assert len(frame) == SECONDS * 2  # one row per meter and second: nothing lost, no duplicate
    frame = frame.sort_values(["timeStamp", "rtId"]).reset_index(drop=True)
    assert list(frame["voltage"]) == [230.0 + s + i for s in range(SECONDS) for i in (0, 1)]
    current = frame["current"].tolist()
    expected = [5.0 + s + i if s in BOTH else None for s in range(SECONDS) for i in (0, 1)]
    assert [None if math.isnan(c) else c for c in current] == expected  # NaN: not reported
    assert consumer.counts.dead == 0
    assert consumer.counts.points >= (SECONDS + len(BOTH)) * 2  # redelivered ones land once


def test_asset_repository_restarted_mid_ingest_loses_nothing(tmp_path: Path) -> None:
    """Stream points on RabbitMQ, written by the stream-points consumer through a real Asset
    Repository process, which is stopped and started again (same port) mid-ingest: the
    consumer retries the unwritten batch, every point lands once."""
    import httpx

    import workbench
    from tests.communication.test_end_to_end import _env, _process, wait_for
    from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
    from workbench.client.remote import RemoteTenant
    from workbench.communication.edge import stream_points_message
    from workbench.runtime.files import import_runtime_file
    from workbench.testing.http import free_port

    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    admin = RabbitMqAdmin(
        require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API")
    )
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        energy = wb.tenants.create("energy")
        energy.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(energy.entities, energy.model, DEMO_RUNTIME)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "workbench", "serve", "asset-repository"),
        *("--port", str(port), "--data-dir", str(home), "--no-auth"),
    ]
    env = _env({})
    tenant_name = f"ar-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant_name)
    platform = RabbitMqBus(url, tenant_name)

    def up() -> bool:
        return httpx.get(f"{api}/healthz", timeout=1).status_code == 200

    def rows(remote: RemoteTenant) -> int:
        return len(remote.streams(METER).read())

    async def publish(seconds: range) -> None:
        await platform.publish_many([stream_points_message(METER, _points(s)) for s in seconds])

    async def scenario(remote: RemoteTenant, restart: Any) -> StreamPointsConsumer:
        await platform.ensure_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        consumer = StreamPointsConsumer(
            platform,
            STREAM_POINTS,
            lambda ck, points: remote.streams(ck).write(points),
            linger_seconds=0.05,
            retry_seconds=0.2,
        )
        consuming = asyncio.create_task(consumer.run())
        await publish(range(0, 20))
        async with asyncio.timeout(120):
            while await asyncio.to_thread(rows, remote) < 40:
                await asyncio.sleep(0.1)
        await asyncio.to_thread(restart)  # stopped; the next points wait in RabbitMQ
        await publish(range(20, SECONDS))
        async with asyncio.timeout(180):
            while consumer.counts.retried == 0:
                await asyncio.sleep(0.05)  # the consumer found the store away
        await asyncio.to_thread(restart)  # started again
        async with asyncio.timeout(180):
            while await asyncio.to_thread(rows, remote) < SECONDS * 2:
                await asyncio.sleep(0.2)
        consuming.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consuming
        return consumer

    with ExitStack() as stack:
        processes: list[Any] = []

        def restart() -> None:
            if processes and processes[-1].poll() is None:  # stop it
                processes[-1].terminate()
                processes[-1].wait(30)
                return
            log = tmp_path / f"asset-repository-{len(processes)}.log"
            processes.append(stack.enter_context(_process(command, env, log)))
            wait_for(up, "the Asset Repository to start", 120)

        try:
            restart()
            remote = stack.enter_context(RemoteTenant(api, "energy"))
            consumer = asyncio.run(asyncio.wait_for(scenario(remote, restart), 480))
            frame = remote.streams(METER).read().to_pandas()
        finally:
            platform.close()
            admin.delete_tenant(tenant_name)
            admin.close()
    assert consumer.counts.retried >= 1
    assert consumer.counts.dead == 0
    assert len(frame) == SECONDS * 2  # one row per meter and second: nothing lost, no repeat
    frame = frame.sort_values(["timeStamp", "rtId"]).reset_index(drop=True)
    assert list(frame["voltage"]) == [230.0 + s + i for s in range(SECONDS) for i in (0, 1)]
