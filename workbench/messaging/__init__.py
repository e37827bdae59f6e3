"""The message bus port (events between processes and components) and its adapters."""

from workbench.messaging.base import EntityEvent, MessageBus, Subscription, UpdateType
from workbench.messaging.local import LocalMessageBus

__all__ = ["EntityEvent", "LocalMessageBus", "MessageBus", "Subscription", "UpdateType"]
