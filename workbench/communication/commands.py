"""Commands to the Communication Controller over the tenant's bus (topic ``commands``).

The GraphQL mutations (:mod:`workbench.graphql.communication`) run in the Asset Repository, the
adapters' WebSocket sessions live in the controller: a mutation checks what it can (the entity
exists, has the right type, its adapter is Online) and publishes a command; the controller's
member of the durable group :data:`CONTROLLER_GROUP` carries it out (the same hub methods as its
REST routes) and records what happened: an execution becomes a ``PipelineExecution`` with the
``executionId`` the mutation returned, also when it fails (adapter gone meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.messaging.base import COMMANDS, MessageBus, new_message_id

__all__ = [
    "CONTROLLER_GROUP",
    "DEPLOY_ADAPTER",
    "DEPLOY_DATAFLOW",
    "DEPLOY_PIPELINE",
    "EXECUTE_PIPELINE",
    "Command",
    "commands_topic",
    "prepare_command",
    "send_command",
]

EXECUTE_PIPELINE = "executePipeline"
DEPLOY_PIPELINE = "deployPipeline"
DEPLOY_ADAPTER = "deployAdapter"
DEPLOY_DATAFLOW = "deployDataFlow"
#: the controller's durable consumer group on the commands topic
CONTROLLER_GROUP = "communication-controller"

_LIBRARY = "System.Communication"
_TARGET_TYPE = {
    EXECUTE_PIPELINE: f"{_LIBRARY}/Pipeline",
    DEPLOY_PIPELINE: f"{_LIBRARY}/Pipeline",
    DEPLOY_ADAPTER: f"{_LIBRARY}/Adapter",
    DEPLOY_DATAFLOW: f"{_LIBRARY}/DataFlow",
}


def commands_topic(tenant_id: str) -> str:
    """The multi-tenant address of a tenant's commands (``tenants.<id>.commands``)."""
    return f"tenants.{tenant_id}.{COMMANDS}"


@dataclass
class Command:
    """One command: what, on which entity, and (execute) the input and the execution id."""

    kind: str
    rt_id: str
    adapter_rt_ids: list[str] = field(default_factory=list)
    input: Any = None
    execution_id: str | None = None
    requested_by: str | None = None

    def to_message(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "rtId": self.rt_id,
            "adapterRtIds": self.adapter_rt_ids,
            "input": self.input,
            "executionId": self.execution_id,
            "requestedBy": self.requested_by,
        }


def _target(tenant: Any, kind: str, rt_id: str) -> Any:
    type_id = _TARGET_TYPE[kind]
    try:
        entity = tenant.entities.get(rt_id)
    except (NotFound, ValidationError):
        entity = None
    if entity is None or entity.ck_type_id != type_id:
        raise NotFound(f"tenant {tenant.id!r} has no {type_id} with rtId {rt_id!r}")
    return entity


def _pipeline_adapters(tenant: Any, pipeline_rt_id: str) -> list[Any]:
    adapters = tenant.entities.navigate(pipeline_rt_id, "adapter")
    if not adapters:
        raise ValidationError(
            f"pipeline {pipeline_rt_id} is executed by no adapter; link it to one "
            f"({_LIBRARY}/Executes)"
        )
    return list(adapters)


def prepare_command(
    tenant: Any, kind: str, rt_id: str, *, input: Any = None, requested_by: str | None = None
) -> Command:
    """Check ``kind`` on entity ``rt_id`` of ``tenant`` and build its command: NotFound for a
    missing entity, ValidationError for a pipeline without adapter, Conflict (the REST routes'
    message) for an execute whose adapter is not Online."""
    if kind not in _TARGET_TYPE:
        raise ValidationError(f"unknown command {kind!r}; known: {', '.join(_TARGET_TYPE)}")
    _target(tenant, kind, rt_id)
    if kind == DEPLOY_ADAPTER:
        adapters = [tenant.entities.get(rt_id)]
    elif kind == DEPLOY_DATAFLOW:
        adapters = []
        for child in tenant.entities.navigate(rt_id, "children"):
            if child.ck_type_id == _TARGET_TYPE[DEPLOY_PIPELINE]:
                adapters.extend(tenant.entities.navigate(child.rt_id, "adapter"))
    else:
        adapters = _pipeline_adapters(tenant, rt_id)
    adapter_ids = sorted({a.rt_id for a in adapters})
    command = Command(kind, rt_id, adapter_ids, requested_by=requested_by)
    if kind == EXECUTE_PIPELINE:
        adapter = adapters[0]
        if adapter.attributes.get("communicationState") != "Online":
            raise Conflict(
                f"adapter {adapter.rt_id} of pipeline {rt_id} is not connected; start it: "
                f"workbench adapter run --tenant {tenant.id} --adapter {adapter.rt_id}"
            )
        command.input = input if input is not None else {}
        command.execution_id = new_message_id()
    return command


def send_command(bus: MessageBus | None, tenant_id: str, command: Command) -> None:
    """Publish ``command`` to the controller (its id dedupes a redelivery)."""
    if bus is None:
        raise ValidationError(
            f"{command.kind} needs the Communication Controller, and this GraphQL endpoint has "
            "no message bus to reach it; use the Asset Repository of a running platform "
            "(workbench up) or the controller's REST API"
        )
    bus.publish(
        commands_topic(tenant_id),
        command.to_message(),
        key=command.kind,
        message_id=command.execution_id or new_message_id(),
    )
