"""GraphQL extensions: promoted notebook functions as fields under ``extensions { ... }``.

A ``graphql`` promotion stores the typed functions of a notebook (names, argument and result
types, see :mod:`workbench.promotion.graphql_functions`). :func:`with_extensions` adds the
deployed ones of a tenant to its generated schema as ``Query.extensions``; each field's resolver
sends the call to the promotion's worker process (:class:`FunctionWorker`) and waits at most
the promotion's timeout. The code never runs in the API server, and a failing, slow or
crashing function is an error on its own field only: every extension field is nullable, and
an extension whose description does not build a field is left out (and logged) rather than
failing the schema.

:func:`extensions_stamp` is part of the schema cache key, so deploying, rolling back or
retiring an extension rebuilds the tenant's schema on its next request.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
)

from workbench.ck.naming import graphql_type_name

if TYPE_CHECKING:
    from workbench.graphql.schema import TenantSchema
    from workbench.graphql.tenant import GraphQLTenant
    from workbench.promotion.artifacts import Artifact
    from workbench.promotion.graphql_functions import FunctionWorker

__all__ = ["extensions_stamp", "with_extensions", "workers"]

log = logging.getLogger("workbench.graphql.extensions")

_SCALARS: dict[str, Any] = {
    "Int": GraphQLInt,
    "Float": GraphQLFloat,
    "String": GraphQLString,
    "Boolean": GraphQLBoolean,
}


def _scalar(name: str, schema: GraphQLSchema) -> Any:
    """A scalar by name; the schema's own JSON and DateTime (one object per name)."""
    return _SCALARS.get(name) or schema.type_map[name]


def extensions_stamp(tenant: GraphQLTenant) -> int:
    """Changes whenever a promotion of the tenant is deployed, rolled back or retired."""
    from workbench.promotion.artifacts import ArtifactStore

    return ArtifactStore(tenant.files_dir, tenant.id).deployments_stamp()


class WorkerPool:
    """The process's extension workers, one per deployed promotion version."""

    def __init__(self) -> None:
        self._workers: dict[tuple[str, str, int], FunctionWorker] = {}
        self._lock = threading.Lock()

    def get(self, tenant: GraphQLTenant, artifact: Artifact) -> FunctionWorker:
        from workbench.promotion.graphql_functions import FunctionWorker, worker_environment

        key = (tenant.id, artifact.name, artifact.version)
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                folder = tenant.files_dir / "promotions" / artifact.name / "workers"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{artifact.version}.json"
                path.write_text(json.dumps(artifact.notebook), encoding="utf-8")
                home = tenant.home
                worker = FunctionWorker(path, worker_environment(home, tenant.id))
                self._workers[key] = worker
            return worker

    def keep_only(self, tenant_id: str, live: set[tuple[str, int]]) -> None:
        """Stop the workers of versions no longer deployed."""
        with self._lock:
            stale = [k for k in self._workers if k[0] == tenant_id and (k[1], k[2]) not in live]
            for key in stale:
                self._workers.pop(key).close()

    def close(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()


#: the workers of this process
workers = WorkerPool()


def _output_type(
    ref: str, schema: GraphQLSchema, entity_ids: list[str]
) -> GraphQLOutputType | None:
    """The GraphQL type of a described result (always nullable at the outer level)."""

    def build(text: str) -> Any:
        required = text.endswith("!")
        text = text.rstrip("!")
        if text.startswith("[") and text.endswith("]"):
            inner = build(text[1:-1])
            kind: Any = GraphQLList(inner)
        elif text.startswith("entity:"):
            type_id = text.removeprefix("entity:")
            kind = schema.type_map.get(graphql_type_name(type_id))
            if kind is None:
                raise TypeError(f"the schema has no type for {type_id}")
            entity_ids.append(type_id)
        else:
            kind = _scalar(text, schema)
        return GraphQLNonNull(kind) if required else kind

    result = build(ref)
    output: GraphQLOutputType = result.of_type if isinstance(result, GraphQLNonNull) else result
    return output


def _input_type(ref: str, schema: GraphQLSchema) -> Any:
    required = ref.endswith("!")
    text = ref.rstrip("!")
    if text.startswith("[") and text.endswith("]"):
        kind: Any = GraphQLList(_input_type(text[1:-1], schema))
    else:
        kind = _scalar(text, schema)
    return GraphQLNonNull(kind) if required else kind


def _resolver(
    tenant: GraphQLTenant, artifact: Artifact, function: dict[str, Any], entities: bool
) -> Any:
    from workbench.graphql.sources import SourceFactory
    from workbench.promotion.graphql_functions import ExtensionFailed

    timeout = float(artifact.details.get("timeout") or 10.0)
    name = function["name"]
    sources = SourceFactory(tenant.model) if entities else None

    def resolve(_root: Any, info: Any, **args: Any) -> Any:
        try:
            value = workers.get(tenant, artifact).call(name, args, timeout)
        except ExtensionFailed as exc:
            raise GraphQLError(
                f"extension {artifact.ref} {name}: {exc.message}",
                extensions={"code": "EXTENSION_FAILED"},
            ) from None
        if sources is None or value is None:
            return value
        many = isinstance(value, list)
        ids = [str(v) for v in (value if many else [value])]
        stored = info.context.entities.store.get_many(ids)
        found = sources.sources([stored[i.lower()] for i in ids if i.lower() in stored])
        return found if many else (found[0] if found else None)

    return resolve


def _fields(tenant: GraphQLTenant, schema: GraphQLSchema) -> dict[str, GraphQLField]:
    from workbench.promotion.artifacts import ArtifactStore

    store = ArtifactStore(tenant.files_dir, tenant.id)
    fields: dict[str, GraphQLField] = {}
    live: set[tuple[str, int]] = set()
    for deployment in store.deployments("graphql"):
        try:
            artifact = store.get(deployment.name, deployment.version)
        except Exception as exc:  # a broken artifact leaves the others (and the schema) alone
            log.error("GraphQL extension %s of %s left out: %s", deployment.name, tenant.id, exc)
            continue
        live.add((artifact.name, artifact.version))
        for function in artifact.details.get("functions") or []:
            name = function["name"]
            try:
                entity_types: list[str] = []
                output = _output_type(function["returns"], schema, entity_types)
                args = {
                    a["name"]: GraphQLArgument(
                        _input_type(a["type"], schema), default_value=a.get("default")
                    )
                    for a in function["args"]
                }
                if name in fields:
                    raise TypeError(f"another extension already defines {name!r}")
                fields[name] = GraphQLField(
                    output,  # type: ignore[arg-type]
                    args,
                    _resolver(tenant, artifact, function, bool(entity_types)),
                    description=(function.get("description") or "")
                    + f"\n\n(promoted notebook {artifact.ref})",
                )
            except (TypeError, KeyError) as exc:
                log.error("GraphQL extension field %s of %s left out: %s", name, artifact.ref, exc)
    workers.keep_only(tenant.id, live)
    return fields


def with_extensions(schema: TenantSchema, tenant: GraphQLTenant) -> TenantSchema:
    """``schema`` with the tenant's deployed extensions under ``Query.extensions`` and, when it
    has deployed bots, ``Query.bots`` (the same schema when it has neither)."""
    from workbench.graphql.schema import TenantSchema

    base = schema.graphql_schema
    added: dict[str, GraphQLField] = {}
    try:
        fields = _fields(tenant, base)
    except Exception:
        log.exception("GraphQL extensions of %s left out", tenant.id)
        fields = {}
    if fields:
        extensions = GraphQLObjectType(
            "Extensions", fields, description="Functions of promoted notebooks."
        )
        added["extensions"] = GraphQLField(
            extensions,
            resolve=lambda _root, _info: {},
            description="Fields defined by promoted notebooks (workbench promote --kind "
            "graphql); each runs in a worker process with a timeout.",
        )
    try:
        from workbench.bots.graphql_fields import bots_field

        bots = bots_field(tenant, base)
    except Exception:
        log.exception("the bots field of %s left out", tenant.id)
        bots = None
    if bots is not None:
        added["bots"] = bots
    if not added:
        return schema
    query = base.query_type
    assert query is not None
    new_query = GraphQLObjectType(
        query.name, {**query.fields, **added}, description=query.description
    )
    types = [
        t for name, t in base.type_map.items() if name != query.name and not name.startswith("__")
    ]
    built = GraphQLSchema(new_query, base.mutation_type, base.subscription_type, types=types)
    return TenantSchema(built, schema.model, schema.stamp)
