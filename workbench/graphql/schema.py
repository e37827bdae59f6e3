"""``build_schema(model)``: one tenant's GraphQL schema, generated from its resolved CK model.

The schema is plain graphql-core (no per-field Python resolvers where nothing is computed, see
:mod:`.batching`); :class:`TenantSchema` executes requests against it with a cache of parsed and
validated documents, and shapes errors for clients (:mod:`.errors`). The services' HTTP and
``graphql-transport-ws`` transport runs it directly (no web framework's GraphQL layer).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    execute,
    print_schema,
    subscribe,
    validate,
    validate_schema,
)

from workbench.ck.model import CkModel
from workbench.ck.naming import graphql_list_query_name
from workbench.errors import ModelError
from workbench.graphql.aggregations import AGGREGATION_TYPE_NAMES, aggregation_args
from workbench.graphql.communication import (
    COMMUNICATION_TYPE_NAMES,
    build_communication_mutation,
)
from workbench.graphql.construction_kit import CK_QUERY, import_library_field
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.errors import shape_errors
from workbench.graphql.inputs import InputTypes
from workbench.graphql.limits import check_operation, guard_operation, parse_document
from workbench.graphql.mutations import build_runtime_mutation
from workbench.graphql.queries import QUERY_TYPE_NAMES, run_query_field
from workbench.graphql.resolvers import list_resolver, runtime_entities_resolver
from workbench.graphql.scalars import list_args
from workbench.graphql.streams import build_stream_mutation, build_stream_query
from workbench.graphql.subscriptions import build_subscription
from workbench.graphql.types import NameRegistry, OutputTypes

__all__ = ["TenantSchema", "build_schema"]

#: parsed and validated documents kept per schema (by query text)
DOCUMENT_CACHE_SIZE = 512


def _placeholder(_root: Any, _info: Info) -> dict[str, Any]:
    return {}


def _namespace(name: str, type_: GraphQLObjectType) -> GraphQLField:
    return GraphQLField(GraphQLNonNull(type_), resolve=_placeholder)


def build_schema(model: CkModel, *, stamp: Any = None) -> TenantSchema:
    """Generate the GraphQL schema of ``model`` (see GRAPHQL_API.md for its shape).

    Raises :class:`ModelError` when the model produces an invalid schema (name clashes the CK
    import did not catch). ``stamp`` is kept on the result (the model version it was built for).
    """
    names = NameRegistry()
    for static in (
        "Query",
        "Mutation",
        "RuntimeQuery",
        "ConstructionKitQuery",
        "ConstructionKitMutation",
        "StreamDataQuery",
        "StreamDataMutation",
        "PageInfo",
        "FieldFilterInput",
        "FieldFilterOperator",
        "SearchFilterInput",
        "SortOrder",
        "SortOrderInput",
        "RtEntityIdInput",
        "AssociationModOption",
        "AssociationChangeInput",
        "DeleteOption",
        "UpdateType",
        "AggregateFunction",
        "GeoPoint",
        "GeoPointInput",
        "DateTime",
        "Long",
        "JSON",
        "CkModelInfo",
        "CkTypeInfo",
        "CkAttributeInfo",
        "CkAssociationInfo",
        "CkEnumInfo",
        "CkEnumValueInfo",
        "CkRecordInfo",
        "CkImportResult",
        *AGGREGATION_TYPE_NAMES,
        *QUERY_TYPE_NAMES,
        *COMMUNICATION_TYPE_NAMES,
    ):
        names.claim(static, "the fixed part of the schema")
    outputs = OutputTypes(model, names)
    inputs = InputTypes(model, outputs, names)

    runtime_fields: dict[str, GraphQLField] = {}
    for type_id, ck_type in model.types.items():
        runtime_fields[graphql_list_query_name(type_id)] = GraphQLField(
            GraphQLNonNull(outputs.connection(type_id)),
            {**list_args(), **aggregation_args()},
            list_resolver(type_id, outputs.sources),
            description=f"Entities of {type_id}"
            + (" and its subtypes." if ck_type.subtypes else "."),
        )
    runtime_fields["runtimeEntities"] = GraphQLField(
        GraphQLNonNull(outputs.connection("System/Entity")),
        {
            "ckTypeId": GraphQLArgument(
                GraphQLString, description="A CK type id (default: every entity)."
            ),
            **list_args(),
            **aggregation_args(),
        },
        runtime_entities_resolver(outputs.sources),
        description="Entities of any type, by CK type id (subtypes included).",
    )
    runtime_fields["runQuery"] = run_query_field()
    runtime_query = GraphQLObjectType("RuntimeQuery", runtime_fields)
    query = GraphQLObjectType(
        "Query",
        {
            "runtime": _namespace("runtime", runtime_query),
            "constructionKit": _namespace("constructionKit", CK_QUERY),
            "streamData": _namespace("streamData", build_stream_query(outputs, names)),
        },
    )
    mutation = GraphQLObjectType(
        "Mutation",
        {
            "runtime": _namespace("runtime", build_runtime_mutation(outputs, inputs, names)),
            "constructionKit": _namespace(
                "constructionKit",
                GraphQLObjectType(
                    "ConstructionKitMutation", {"importLibrary": import_library_field()}
                ),
            ),
            "streamData": _namespace("streamData", build_stream_mutation(outputs, names)),
            "communication": _namespace("communication", build_communication_mutation()),
        },
    )
    schema = GraphQLSchema(
        query,
        mutation,
        build_subscription(outputs, names),
        types=outputs.named_types(),
    )
    problems = validate_schema(schema)
    if problems:
        raise ModelError(
            "the model does not give a valid GraphQL schema: "
            + "; ".join(p.message for p in problems[:10])
        )
    return TenantSchema(schema, model, stamp)


class TenantSchema:
    """One tenant's executable schema. Thread-safe; immutable once built.

    ``execute_sync`` runs a query or mutation in the calling thread (resolvers are synchronous:
    the stores are); ``execute`` runs it in a worker thread for async servers; ``subscribe``
    returns an async iterator of results for subscription operations.
    """

    def __init__(self, schema: GraphQLSchema, model: CkModel, stamp: Any = None) -> None:
        self.graphql_schema = schema
        self.model = model
        self.stamp = stamp
        self._documents: OrderedDict[str, DocumentNode | list[GraphQLError]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TenantSchema {len(self.model.types)} CK types, stamp {self.stamp}>"

    def sdl(self) -> str:
        """The schema in GraphQL SDL."""
        return print_schema(self.graphql_schema)

    def document(self, query: str) -> DocumentNode | list[GraphQLError]:
        """``query`` parsed and validated (cached by text), or its errors."""
        with self._lock:
            cached = self._documents.get(query)
            if cached is not None:
                self._documents.move_to_end(query)
                return cached
        try:
            document = parse_document(query)  # within the request's token and field limits
        except GraphQLError as error:
            result: DocumentNode | list[GraphQLError] = [error]
        else:
            errors = validate(self.graphql_schema, document)
            result = errors if errors else document
        with self._lock:
            self._documents[query] = result
            if len(self._documents) > DOCUMENT_CACHE_SIZE:
                self._documents.popitem(last=False)
        return result

    def execute_sync(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        context: GraphQLContext,
        operation_name: str | None = None,
    ) -> ExecutionResult:
        """Execute a query or mutation; errors come back shaped (``extensions.code``)."""
        document = self.document(query)
        if isinstance(document, list):
            return ExecutionResult(None, shape_errors(document))
        if _operation_type(document, operation_name) is OperationType.SUBSCRIPTION:
            error = GraphQLError(
                "subscriptions run over a WebSocket (graphql-transport-ws) or "
                "TenantSchema.subscribe(), not as a plain request"
            )
            return ExecutionResult(None, shape_errors([error]))
        with guard_operation(
            self.graphql_schema, document, variables, operation_name, context.tenant.id
        ) as executor_class:  # depth, aliases, cost, time: see graphql/limits.py
            result = execute(
                self.graphql_schema,
                document,
                None,
                context,
                dict(variables) if variables else None,
                operation_name,
                executor_class=executor_class,
            )
        if not isinstance(result, ExecutionResult):  # only async resolvers would give one
            raise TypeError("a resolver returned an awaitable; resolvers here are synchronous")
        return ExecutionResult(result.data, shape_errors(result.errors))

    async def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        context: GraphQLContext,
        operation_name: str | None = None,
    ) -> ExecutionResult:
        """:meth:`execute_sync` in a worker thread (keeps the event loop free)."""
        return await asyncio.to_thread(
            self.execute_sync, query, variables, context=context, operation_name=operation_name
        )

    async def subscribe(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        context: GraphQLContext,
        operation_name: str | None = None,
    ) -> AsyncIterator[ExecutionResult] | ExecutionResult:
        """Start a subscription: an async iterator of results, or one result with errors."""
        document = self.document(query)
        if isinstance(document, list):
            return ExecutionResult(None, shape_errors(document))
        check_operation(self.graphql_schema, document, variables, operation_name)
        outcome = subscribe(
            self.graphql_schema,
            document,
            None,
            context,
            dict(variables) if variables else None,
            operation_name,
        )
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if isinstance(outcome, ExecutionResult):
            return ExecutionResult(outcome.data, shape_errors(outcome.errors))
        return _shaped_stream(outcome)


async def _shaped_stream(stream: AsyncIterator[ExecutionResult]) -> AsyncIterator[ExecutionResult]:
    try:
        async for result in stream:
            yield ExecutionResult(result.data, shape_errors(result.errors))
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _operation_type(document: DocumentNode, operation_name: str | None) -> OperationType | None:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None
            or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition.operation
    return None
