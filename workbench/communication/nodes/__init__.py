"""The nodes of this adapter runtime, grouped by what they do (triggers, control, extract,
transform, updates, load) and the protocol nodes; :func:`all_nodes` lists them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.communication.node import Node

__all__ = ["all_nodes"]


def all_nodes() -> list[type[Node]]:
    """Every node class of the runtime (what the default registry holds)."""
    from workbench.communication.nodes import (
        archive,
        control,
        extract,
        http,
        load,
        mail,
        python_exec,
        reads,
        transform,
        triggers,
        updates,
        values,
    )
    from workbench.communication.protocols import NODES as PROTOCOL_NODES

    nodes: list[type[Node]] = []
    for module in (
        triggers, control, extract, reads, transform, values, python_exec, http, updates, load,
        archive, mail,
    ):  # fmt: skip
        nodes.extend(module.NODES)
    return [*nodes, *PROTOCOL_NODES]
