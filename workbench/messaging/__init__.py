"""The message bus port (events between processes and components) and its adapters.

Open a tenant's bus with :func:`bus_from_url` (``memory://``, ``sqlite:///PATH``,
``amqp://...``); see :mod:`workbench.messaging.base` for the semantics every adapter keeps.
"""

from workbench.messaging.base import (
    COMMANDS,
    ENTITY_EVENTS,
    STREAM_POINTS,
    Consumer,
    DeadLetter,
    Delivery,
    EntityEvent,
    MessageBus,
    OutgoingMessage,
    Subscription,
    UpdateType,
    dataflow_topic,
    entity_event_key,
    entity_topic,
    new_message_id,
    point_message_id,
    topic_matches,
)
from workbench.messaging.local import LocalMessageBus
from workbench.messaging.registry import (
    bus_from_url,
    embedded_bus_url,
    settings_bus_url,
    tenant_vhost,
)
from workbench.messaging.tenants import TenantBuses

__all__ = [
    "COMMANDS",
    "ENTITY_EVENTS",
    "STREAM_POINTS",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "EntityEvent",
    "LocalMessageBus",
    "MessageBus",
    "OutgoingMessage",
    "Subscription",
    "TenantBuses",
    "UpdateType",
    "bus_from_url",
    "dataflow_topic",
    "embedded_bus_url",
    "entity_event_key",
    "entity_topic",
    "new_message_id",
    "point_message_id",
    "settings_bus_url",
    "tenant_vhost",
    "topic_matches",
]
