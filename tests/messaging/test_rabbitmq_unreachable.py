"""A RabbitMQ bus whose server cannot be reached fails clearly and never blocks its caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from workbench.errors import BackendUnavailable
from workbench.messaging.base import OutgoingMessage
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.testing.http import free_port


def test_an_unreachable_server_is_named_and_subscribing_does_not_block() -> None:
    bus = RabbitMqBus(f"amqp://wb:secret@127.0.0.1:{free_port()}/", "acme", connect_timeout=0.5)

    async def scenario() -> float:
        start = time.perf_counter()
        subscription = bus.subscribe("entity-events")
        returned = time.perf_counter() - start
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1.*unreachable"):
            await asyncio.wait_for(anext(aiter(subscription)), 10)
        with pytest.raises(BackendUnavailable, match="wb-acme") as caught:
            await bus.publish_many([OutgoingMessage("commands", {"execute": "p1"})])
        assert "secret" not in str(caught.value)
        await subscription.close()
        return returned

    try:
        assert asyncio.run(scenario()) < 0.1
    finally:
        bus.close()
