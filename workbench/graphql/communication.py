"""``mutation { communication { ... } }``: the Communication Controller's operations.

``executePipeline``, ``deployPipeline``, ``deployAdapter`` and ``deployDataFlow`` check their
entity here and send a command to the controller over the tenant's bus
(:mod:`workbench.communication.commands`). Authorization is the one of every mutation
(:func:`workbench.services.authorization.graphql_operation_scopes`: entity writes, as the
controller's REST routes), and they are audited like the other mutations. An execution's result
is its ``PipelineExecution`` entity (``executionId`` as returned).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from workbench.communication.commands import (
    DEPLOY_ADAPTER,
    DEPLOY_DATAFLOW,
    DEPLOY_PIPELINE,
    EXECUTE_PIPELINE,
    prepare_command,
    send_command,
)
from workbench.graphql.context import Info
from workbench.graphql.scalars import JSON

__all__ = ["COMMUNICATION_TYPE_NAMES", "build_communication_mutation"]

COMMUNICATION_TYPE_NAMES = ("CommunicationMutation", "CommunicationCommand")

_COMMAND = GraphQLObjectType(
    "CommunicationCommand",
    {
        "command": GraphQLField(GraphQLNonNull(GraphQLString), description="What was asked."),
        "rtId": GraphQLField(GraphQLNonNull(GraphQLID), description="The entity it is for."),
        "adapterRtIds": GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLID))),
            description="The adapters it concerns (those not connected get their "
            "configuration when they connect).",
        ),
        "executionId": GraphQLField(
            GraphQLString,
            description="executePipeline: the ExecutionId of the PipelineExecution it records.",
        ),
        "status": GraphQLField(
            GraphQLNonNull(GraphQLString), description="Sent: the controller carries it out."
        ),
    },
    description="A command sent to the Communication Controller.",
)


def _resolver(kind: str) -> Any:
    def resolve(_root: Any, info: Info, rtId: str, input: Any = None) -> dict[str, Any]:
        context = info.context
        command = prepare_command(
            context.tenant, kind, rtId, input=input, requested_by=context.principal
        )
        send_command(context.bus, context.tenant.id, command)
        return {
            "command": kind,
            "rtId": command.rt_id,
            "adapterRtIds": command.adapter_rt_ids,
            "executionId": command.execution_id,
            "status": "Sent",
        }

    return resolve


def _field(kind: str, description: str, *, with_input: bool = False) -> GraphQLField:
    args = {"rtId": GraphQLArgument(GraphQLNonNull(GraphQLID))}
    if with_input:
        args["input"] = GraphQLArgument(JSON, description="The data context to start from.")
    return GraphQLField(GraphQLNonNull(_COMMAND), args, _resolver(kind), description=description)


def build_communication_mutation() -> GraphQLObjectType:
    """The ``communication`` namespace of ``Mutation``."""
    return GraphQLObjectType(
        "CommunicationMutation",
        {
            "executePipeline": _field(
                EXECUTE_PIPELINE,
                "Run a pipeline now on its adapter (which must be Online).",
                with_input=True,
            ),
            "deployPipeline": _field(
                DEPLOY_PIPELINE, "Push the configuration of the pipeline's adapter now."
            ),
            "deployAdapter": _field(DEPLOY_ADAPTER, "Push an adapter's configuration now."),
            "deployDataFlow": _field(
                DEPLOY_DATAFLOW, "Push the configuration of every adapter of a data flow."
            ),
        },
        description="Operations of the Communication Controller (see docs/communication.md).",
    )
