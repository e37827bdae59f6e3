"""The message bus port: publish events on topics, subscribe to them as async iterators.

Adapters: :class:`workbench.messaging.local.LocalMessageBus` (in-process, asyncio). A RabbitMQ
adapter for events across processes comes with the pipeline work; it implements this same class.
Topics are plain strings; entity events of a tenant go to :func:`entity_topic`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["EntityEvent", "MessageBus", "Subscription", "UpdateType", "entity_topic"]


class UpdateType(StrEnum):
    """What happened to an entity (the GraphQL ``updateTypes`` values)."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class EntityEvent:
    """An entity was inserted, updated or deleted in ``tenant_id``.

    ``entity`` is the entity as a JSON-friendly dict (``Entity.to_dict()``; for deletes the last
    known state or just the system fields).
    """

    tenant_id: str
    update_type: UpdateType
    rt_id: str
    ck_type_id: str
    entity: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def entity_topic(tenant_id: str) -> str:
    """The topic carrying :class:`EntityEvent` of one tenant."""
    return f"tenants.{tenant_id}.entities"


class Subscription(ABC):
    """An open subscription: iterate it for messages, close it to stop receiving."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Any]: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving; pending iteration ends."""


class MessageBus(ABC):
    """Port for publishing and receiving messages.

    Override :meth:`publish` and :meth:`subscribe`. ``publish`` may be called from any thread
    (GraphQL mutations run in worker threads); subscribers receive messages on the event loop
    they subscribed from, in publish order per topic.
    """

    @abstractmethod
    def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to every current subscriber of ``topic`` (fire and forget)."""

    @abstractmethod
    def subscribe(self, topic: str) -> Subscription:
        """Start receiving messages published to ``topic`` from now on (call in a running loop)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (no-op for in-process buses)."""
