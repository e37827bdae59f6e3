"""The bus contract on a real RabbitMQ (WORKBENCH_TEST_AMQP_URL; .ci/rabbitmq.sh starts one)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import aio_pika
import pytest

from workbench.messaging.base import MessageBus
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.testing.message_bus_contract import MessageBusContract
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def amqp_url() -> str:
    return require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")


@pytest.fixture(scope="module")
def tenant(admin: RabbitMqAdmin) -> Iterator[str]:
    tenant = f"bus-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant)
    yield tenant
    admin.delete_tenant(tenant)


class TestRabbitMqBus(MessageBusContract):
    supports_durability = True

    @pytest.fixture
    def bus(self, amqp_url: str, tenant: str) -> Iterator[MessageBus]:
        bus = RabbitMqBus(amqp_url, tenant)
        yield bus
        bus.close()

    def reopen(self, bus: MessageBus) -> MessageBus:
        assert isinstance(bus, RabbitMqBus)
        return RabbitMqBus(bus._url, None)

    async def inject_raw(self, bus: MessageBus, topic: str, data: bytes, message_id: str) -> None:
        assert isinstance(bus, RabbitMqBus)
        connection = await aio_pika.connect(bus._url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(topic)
            await exchange.publish(aio_pika.Message(data, message_id=message_id), routing_key="")
        finally:
            await connection.close()
