"""The nodes of this adapter runtime, grouped by what they do (triggers, control, extract,
transform, updates, load); :func:`register_all` adds them all to a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.communication.registry import NodeRegistry

__all__ = ["register_all"]


def register_all(registry: NodeRegistry) -> None:
    from workbench.communication import protocols
    from workbench.communication.nodes import control, extract, load, transform, triggers, updates

    for module in (triggers, control, extract, transform, updates, load, protocols):
        for node in module.NODES:
            registry.register(node)
