"""Tenant vhosts and users through the management API; a tenant's user is confined to its vhost."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import aio_pika
import aiormq
import pytest

from workbench.errors import BackendUnavailable, ValidationError
from workbench.messaging.base import OutgoingMessage
from workbench.messaging.rabbitmq import RabbitMqBus
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin, TenantCredentials
from workbench.settings import Settings
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def amqp() -> tuple[str, int]:
    parts = urlsplit(require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ"))
    return parts.hostname or "127.0.0.1", parts.port or 5672


@pytest.fixture(scope="module")
def two_tenants(admin: RabbitMqAdmin) -> Iterator[tuple[TenantCredentials, TenantCredentials]]:
    suffix = secrets.token_hex(3)
    a, b = admin.ensure_tenant(f"iso-a-{suffix}"), admin.ensure_tenant(f"iso-b-{suffix}")
    yield a, b
    admin.delete_tenant(a.tenant)
    admin.delete_tenant(b.tenant)


def test_a_tenant_gets_its_vhost_and_a_user_limited_to_it(
    admin: RabbitMqAdmin, two_tenants: tuple[TenantCredentials, TenantCredentials]
) -> None:
    a, b = two_tenants
    assert a.vhost == f"wb-{a.tenant}"
    assert {a.vhost, b.vhost} <= set(admin.vhosts())
    assert set(admin.user_permissions(a.username)) == {a.vhost}
    assert admin.user_permissions(a.username)[a.vhost]["read"] == ".*"


def test_a_tenant_user_opens_its_own_vhost(
    amqp: tuple[str, int], two_tenants: tuple[TenantCredentials, TenantCredentials]
) -> None:
    a, _ = two_tenants

    async def scenario() -> str:
        connection = await aio_pika.connect(a.amqp_url(*amqp), timeout=10)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            return queue.name
        finally:
            await connection.close()

    assert asyncio.run(scenario()).startswith("amq.gen-")


def test_a_tenant_user_cannot_open_another_tenants_vhost(
    amqp: tuple[str, int], two_tenants: tuple[TenantCredentials, TenantCredentials]
) -> None:
    a, b = two_tenants
    trespass = TenantCredentials(a.tenant, b.vhost, a.username, a.password)

    async def scenario() -> None:
        connection = await aio_pika.connect(trespass.amqp_url(*amqp), timeout=10)
        await connection.close()

    # RabbitMQ answers Connection.Open for a vhost the user has no permission on with
    # Connection.Close (530 NOT_ALLOWED) instead of Connection.OpenOk
    with pytest.raises(aiormq.exceptions.InvalidFrameError, match=r"Connection\.Close"):
        asyncio.run(scenario())


def test_the_bus_with_a_tenant_user_publishes_in_its_vhost_and_is_refused_elsewhere(
    amqp: tuple[str, int], two_tenants: tuple[TenantCredentials, TenantCredentials]
) -> None:
    a, b = two_tenants
    own = RabbitMqBus(a.amqp_url(*amqp), a.tenant, connect_timeout=5)
    other = RabbitMqBus(a.amqp_url(*amqp), b.tenant, connect_timeout=5)
    try:
        asyncio.run(own.publish_many([OutgoingMessage("commands", {"execute": "p1"})]))
        with pytest.raises(BackendUnavailable, match=f"vhost 'wb-{b.tenant}'"):
            asyncio.run(other.publish_many([OutgoingMessage("commands", {"execute": "p1"})]))
    finally:
        own.close()
        other.close()


def test_the_admin_comes_from_the_settings_or_says_what_to_set() -> None:
    with pytest.raises(ValidationError, match="WORKBENCH_RABBITMQ_MANAGEMENT_URL"):
        RabbitMqAdmin.from_settings(Settings(rabbitmq_management_url=""))
    admin = RabbitMqAdmin.from_settings(Settings(rabbitmq_management_url="http://a:b@h:15672"))
    assert admin.username == "a"
    admin.close()


def test_bad_management_urls_are_explained() -> None:
    with pytest.raises(ValidationError, match="carries no credentials"):
        RabbitMqAdmin("http://127.0.0.1:15672")
    with pytest.raises(ValidationError, match="not an http"):
        RabbitMqAdmin("amqp://u:p@127.0.0.1:5672")
