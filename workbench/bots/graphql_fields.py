"""``Query.bots`` of a tenant's GraphQL schema: its deployed bots and their runs (read-only).

Added by :func:`workbench.graphql.extensions.with_extensions` when the tenant has deployed
bots. It reads the promotion pointers and the run history files; nothing of a bot runs here.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)

from workbench.bots.history import RunRecord, history_of
from workbench.bots.schedules import BotSettings
from workbench.promotion.artifacts import ArtifactStore

__all__ = ["bots_field"]


def _run_type(schema: GraphQLSchema) -> GraphQLObjectType:
    json_type: Any = schema.type_map["JSON"]
    return GraphQLObjectType(
        "BotRunInfo",
        {
            "runId": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda r, _: r.run_id),
            "bot": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda r, _: r.bot),
            "version": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=lambda r, _: r.version),
            "trigger": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda r, _: r.trigger),
            "status": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda r, _: r.status),
            "queuedAt": GraphQLField(GraphQLString, resolve=lambda r, _: r.to_dict()["queuedAt"]),
            "startedAt": GraphQLField(GraphQLString, resolve=lambda r, _: r.to_dict()["startedAt"]),
            "finishedAt": GraphQLField(
                GraphQLString, resolve=lambda r, _: r.to_dict()["finishedAt"]
            ),
            "seconds": GraphQLField(GraphQLFloat, resolve=lambda r, _: r.to_dict()["seconds"]),
            "attempts": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=lambda r, _: r.attempts),
            "error": GraphQLField(GraphQLString, resolve=lambda r, _: r.error),
            "parameters": GraphQLField(json_type, resolve=lambda r, _: r.parameters),
            "outputs": GraphQLField(json_type, resolve=lambda r, _: r.outputs),
        },
        description="One run of a bot (see the Bot Service for its notebook, HTML and log).",
    )


def bots_field(tenant: Any, schema: GraphQLSchema) -> GraphQLField | None:
    """``bots(name: String): [BotInfo!]!``, or None when the tenant has no deployed bot."""
    home_dir = tenant._workbench.registry.tenant_dir(tenant.id)
    store = ArtifactStore(home_dir, tenant.id)
    if not store.deployments("bot"):
        return None
    run_type = _run_type(schema)
    runs_arg = {"limit": GraphQLArgument(GraphQLInt, default_value=20)}

    def runs(bot: dict[str, Any], _info: Any, limit: int = 20) -> list[RunRecord]:
        return history_of(tenant._workbench, tenant.id).runs(bot["name"], max(1, min(limit, 500)))

    bot_type = GraphQLObjectType(
        "BotInfo",
        {
            "name": GraphQLField(GraphQLNonNull(GraphQLString)),
            "version": GraphQLField(GraphQLNonNull(GraphQLInt)),
            "author": GraphQLField(GraphQLNonNull(GraphQLString)),
            "schedule": GraphQLField(GraphQLNonNull(GraphQLString)),
            "enabled": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
            "lastRun": GraphQLField(
                run_type,
                resolve=lambda b, _: history_of(tenant._workbench, tenant.id).last(b["name"]),
            ),
            "runs": GraphQLField(
                GraphQLNonNull(GraphQLList(GraphQLNonNull(run_type))), runs_arg, resolve=runs
            ),
        },
        description="A deployed bot (a promoted notebook run by the Bot Service).",
    )

    def resolve(_root: Any, _info: Any, name: str | None = None) -> list[dict[str, Any]]:
        history = history_of(tenant._workbench, tenant.id)
        found = []
        for deployment in store.deployments("bot"):
            if name is not None and deployment.name != name:
                continue
            artifact = store.get(deployment.name, deployment.version)
            settings = BotSettings.from_dict(artifact.details.get("bot") or {})
            found.append(
                {
                    "name": artifact.name,
                    "version": artifact.version,
                    "author": artifact.author,
                    "schedule": settings.schedule.describe(),
                    "enabled": history.state(artifact.name).enabled,
                }
            )
        return found

    return GraphQLField(
        GraphQLNonNull(GraphQLList(GraphQLNonNull(bot_type))),
        {"name": GraphQLArgument(GraphQLString)},
        resolve,
        description="The tenant's deployed bots and their run history (read-only).",
    )
