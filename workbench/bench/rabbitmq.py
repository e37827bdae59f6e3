"""The RabbitMQ a benchmark runs against: ``--backend amqp://USER:PASS@HOST:PORT/``, else
``WORKBENCH_TEST_AMQP_URL``, else ``WORKBENCH_BUS_URL``; a throw-away tenant vhost on it, created
through the management API (``WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL`` or
``WORKBENCH_RABBITMQ_MANAGEMENT_URL``) and deleted afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from workbench.errors import ValidationError

__all__ = ["amqp_url", "bench_vhost"]


def amqp_url(backend: str | None) -> str:
    """The AMQP URL to run against (see the module docstring)."""
    if backend and backend.split(":", 1)[0].lower() in ("amqp", "amqps"):
        return backend
    if backend:
        raise ValidationError(
            f"--backend {backend!r}: this benchmark runs on RabbitMQ; give an AMQP URL "
            "(amqp://USER:PASS@HOST:PORT/) or set WORKBENCH_TEST_AMQP_URL"
        )
    for name in ("WORKBENCH_TEST_AMQP_URL", "WORKBENCH_BUS_URL"):
        value = os.environ.get(name, "").strip()
        if value.startswith(("amqp://", "amqps://")):
            return value
    raise ValidationError(
        "this benchmark needs RabbitMQ: give --backend amqp://USER:PASS@HOST:PORT/ or set "
        "WORKBENCH_TEST_AMQP_URL (and the management API URL for the tenant vhost)"
    )


def _management_url() -> str:
    for name in ("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "WORKBENCH_RABBITMQ_MANAGEMENT_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise ValidationError(
        "the benchmark creates a tenant vhost through RabbitMQ's management API: set "
        "WORKBENCH_RABBITMQ_MANAGEMENT_URL (http://USER:PASS@HOST:15672)"
    )


@contextmanager
def bench_vhost(prefix: str) -> Iterator[str]:
    """A new tenant name whose vhost ``wb-<tenant>`` exists for the block (then deleted)."""
    from workbench.messaging.rabbitmq_admin import RabbitMqAdmin

    admin = RabbitMqAdmin(_management_url())
    tenant = f"{prefix}-{secrets.token_hex(3)}"
    try:
        admin.ensure_tenant(tenant)
        yield tenant
    finally:
        try:
            admin.delete_tenant(tenant)
        finally:
            admin.close()
