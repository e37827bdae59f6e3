"""Finding the real servers that integration tests need.

Locally a test whose server is missing skips, naming the server and the variable to set; under
``CI=true`` it fails instead, because ``.ci/run`` provisions every server and a skip there would
hide a broken provisioning step.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["in_ci", "rabbitmq_tenant", "require_server_url"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_server_url(env_var: str, server: str) -> str:
    """The URL in ``env_var``; otherwise skip (locally) or fail (under ``CI=true``)."""
    url = os.environ.get(env_var, "").strip()
    if url:
        return url
    message = f"needs a real {server}: set {env_var} (.ci/run provisions one)"
    if in_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


@contextmanager
def rabbitmq_tenant(prefix: str = "test") -> Iterator[tuple[str, str]]:
    """``(amqp_url, tenant)``: a fresh tenant vhost on the real RabbitMQ of
    WORKBENCH_TEST_AMQP_URL and WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL (skip or fail as
    :func:`require_server_url`), deleted afterwards."""
    from workbench.messaging.rabbitmq_admin import RabbitMqAdmin

    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    management = require_server_url(
        "WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API"
    )
    admin = RabbitMqAdmin(management)
    tenant = f"{prefix}-{secrets.token_hex(3)}"
    admin.ensure_tenant(tenant)
    try:
        yield url, tenant
    finally:
        admin.delete_tenant(tenant)
        admin.close()
