"""Open a tenant's message bus from a URL: ``bus_from_url(url, tenant)``.

=====================================  ========================================================
``memory://`` (or ``memory://NAME``)   in-process bus (:class:`LocalMessageBus`), one per NAME
                                       and tenant in this process
``sqlite:///PATH``                     embedded event log shared by the processes of one machine
                                       (:class:`SqliteLogBus`); ``{tenant}`` in PATH is replaced
                                       by the tenant id, otherwise PATH is a directory holding
                                       ``<tenant>.bus.db``
``amqp://USER:PASS@HOST:PORT/``        RabbitMQ (:class:`RabbitMqBus`) in the tenant's vhost
(``amqps://`` too)                     ``wb-<tenant>`` (the URL's own vhost is ignored); create
                                       vhost and user with :mod:`workbench.messaging.rabbitmq_admin`
=====================================  ========================================================
"""

from __future__ import annotations

import threading
from pathlib import Path

from workbench.errors import ValidationError
from workbench.messaging.base import MessageBus
from workbench.messaging.bus_urls import redact_url, tenant_vhost
from workbench.settings import Settings
from workbench.tenancy.ids import validate_tenant_id

__all__ = [
    "bus_from_url",
    "embedded_bus_url",
    "redact_url",
    "settings_bus_url",
    "sqlite_path",
    "tenant_vhost",
]

_memory_lock = threading.Lock()
_memory_buses: dict[tuple[str, str], MessageBus] = {}


def embedded_bus_url(home: Path) -> str:
    """The default bus of ``workbench up``: a SQLite log per tenant under the data directory."""
    return f"sqlite:///{home / 'tenants' / '{tenant}' / 'bus.db'}"


def sqlite_path(url: str, tenant: str) -> Path:
    """The log file ``sqlite:///PATH`` names for ``tenant``."""
    raw = url[len("sqlite://") :]
    if raw.startswith("/"):
        path = "/" + raw.lstrip("/")  # sqlite:///ABS and sqlite:////ABS alike
    else:
        raise ValidationError(
            f"bus URL {url!r} needs an absolute path: sqlite:///ABSOLUTE/PATH (three slashes)"
        )
    if "{tenant}" in path:
        return Path(path.replace("{tenant}", tenant))
    return Path(path) / f"{tenant}.bus.db"


def bus_from_url(url: str, tenant: str) -> MessageBus:
    """A :class:`MessageBus` for ``tenant`` on the backend ``url`` names (see the module doc)."""
    validate_tenant_id(tenant, allow_system=True)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        from workbench.messaging.local import LocalMessageBus

        name = url[len("memory://") :].strip("/")
        with _memory_lock:
            bus = _memory_buses.get((name, tenant))
            if bus is None:
                bus = _memory_buses[(name, tenant)] = LocalMessageBus(tenant=tenant)
            return bus
    if scheme == "sqlite":
        from workbench.messaging.sqlite_log import SqliteLogBus

        return SqliteLogBus(sqlite_path(url, tenant), tenant=tenant)
    if scheme in ("amqp", "amqps"):
        from workbench.messaging.rabbitmq import RabbitMqBus

        return RabbitMqBus(url, tenant=tenant)
    raise ValidationError(
        f"bus URL {redact_url(url)!r} has an unknown scheme {scheme!r}: use memory://, "
        "sqlite:///PATH or amqp://USER:PASS@HOST:PORT/ (WORKBENCH_BUS_URL)"
    )


def settings_bus_url(settings: Settings) -> str:
    """The bus URL of the platform's processes: ``WORKBENCH_BUS_URL``, else the embedded SQLite
    log under the data directory (:func:`embedded_bus_url`), shared by every process on it."""
    return settings.bus_url.strip() or embedded_bus_url(settings.home)
