"""The RabbitMQ bus survives its connection being closed by the server (reconnect with backoff)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from workbench.messaging.base import OutgoingMessage
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.testing.message_bus_contract import TIMEOUT, collect
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


async def _until(check: object, what: str) -> None:
    async def wait() -> None:
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(wait(), 3 * TIMEOUT)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def test_publishers_and_consumers_carry_on_after_the_server_drops_the_connection(
    admin: RabbitMqAdmin,
) -> None:
    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    tenant = f"rc-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant)
    bus = RabbitMqBus(url, tenant)

    async def scenario() -> list[int]:
        await bus.ensure_group("commands", "controller")
        subscription = bus.subscribe("commands")
        async with bus.consume("commands", group="controller") as consumer:
            await bus.publish_many([OutgoingMessage("commands", 1)])
            (first,) = await collect(aiter(consumer), 1)
            await first.ack()
            assert await collect(aiter(subscription), 1) == [1]

            # the management API lists a connection once its statistics came in (a few seconds)
            vhost = f"wb-{tenant}"
            await _until(lambda: admin.close_connections(vhost) >= 1, "the connection to close")
            await _until(lambda: bus.reconnects >= 1, "the bus to reconnect")
            await bus.publish_many([OutgoingMessage("commands", 2)])  # waits for the new link
            bus.publish("commands", 3)
            got = await collect(aiter(consumer), 2)
            for delivery in got:
                await delivery.ack()
            assert await collect(aiter(subscription), 2) == [2, 3]
        await subscription.close()
        return [d.body for d in got]

    try:
        assert asyncio.run(scenario()) == [2, 3]
        assert asyncio.run(bus.pending("commands", "controller")) == 0
    finally:
        bus.close()
        admin.delete_tenant(tenant)
