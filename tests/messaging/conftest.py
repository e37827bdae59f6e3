"""Shared fixtures of the bus tests: the RabbitMQ management client (a real server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.testing.servers import require_server_url


@pytest.fixture(scope="module")
def admin() -> Iterator[RabbitMqAdmin]:
    """The management API of WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL (skip/fail without one)."""
    url = require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API")
    admin = RabbitMqAdmin(url)
    yield admin
    admin.close()
