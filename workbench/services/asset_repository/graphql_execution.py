"""The one authorization-and-execution path of GraphQL, whatever the transport.

HTTP (:mod:`.graphql_routes`) and WebSocket (:mod:`.graphql_ws`) both hand a
:class:`GraphQLRequest` and the caller's :class:`~workbench.services.access.TenantAccess` (from
:data:`GRAPHQL_ACCESS`, the requirement the GraphQL route declares) to :func:`execute` or
:func:`subscribe`. These pick the tenant's current schema, parse and validate the document,
check the operations it needs (:func:`~workbench.services.authorization.graphql_operation_scopes`:
CK import, stream writes, entity writes), execute it through
:class:`~workbench.graphql.TenantSchema` and write an audit entry for every mutation that
succeeded. A transport only turns the :class:`Outcome` into its own messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.requests import HTTPConnection

from workbench.errors import ValidationError
from workbench.services.access import TenantAccess, requires, service_state
from workbench.services.asset_repository.graphql_pool import RunInPool
from workbench.services.authorization import (
    READ_SCOPE,
    graphql_operation_scopes,
    mutation_fields,
)
from workbench.services.context import current_request_id
from workbench.tenancy.catalog import one_model_stamp

if TYPE_CHECKING:
    from workbench.graphql import TenantSchema

__all__ = [
    "GRAPHQL_ACCESS",
    "GraphQLRequest",
    "MutationOverGetError",
    "Outcome",
    "authorize",
    "execute",
    "operation_kind",
    "record_mutation",
    "response_body",
    "subscribe",
]

log = logging.getLogger("workbench.services.graphql")

#: what the GraphQL route needs of every caller, over HTTP and WebSocket: the tenant and the
#: read operation (each operation's further needs are checked by :func:`authorize`)
GRAPHQL_ACCESS = requires(READ_SCOPE)

#: top-level query fields served from memory and the embedded entity store only (streamData may
#: reach a remote stream store)
_LOCAL_ROOT_FIELDS = frozenset({"runtime", "constructionKit", "__typename"})


class MutationOverGetError(Exception):
    """A mutation arrived with GET (GraphQL over HTTP allows only queries there)."""


@dataclass(frozen=True)
class GraphQLRequest:
    """One GraphQL request: the document, its variables and operation, and whether the transport
    allows mutations (not over GET)."""

    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    allow_mutation: bool = True

    @classmethod
    def from_params(cls, raw: Any, *, allow_mutation: bool = True) -> GraphQLRequest:
        """The request of a JSON body, GET parameters or a WebSocket ``subscribe`` payload;
        ValidationError saying what is wrong with it."""
        if not isinstance(raw, Mapping):
            raise ValidationError(
                'a GraphQL request is a JSON object: {"query": "...", "variables": {...}}'
            )
        query = raw.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("the request has no 'query' string; send the GraphQL document")
        variables = raw.get("variables")
        if isinstance(variables, str) and variables.strip():
            try:
                variables = json.loads(variables)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"'variables' is not valid JSON: {exc.msg}") from None
        if variables in ("", None):
            variables = None
        elif not isinstance(variables, Mapping):
            raise ValidationError("'variables' must be a JSON object mapping names to values")
        operation = raw.get("operationName") or None
        if operation is not None and not isinstance(operation, str):
            raise ValidationError("'operationName' must be a string")
        return cls(query, dict(variables) if variables else None, operation, allow_mutation)

    @property
    def shape(self) -> tuple[str, str | None, bool]:
        return (self.query, self.operation_name, self.allow_mutation)


@dataclass(frozen=True)
class Outcome:
    """A GraphQL result, and whether the request failed before execution (parse, validation,
    unknown operation, bad variables): then the response has no ``data`` entry."""

    result: ExecutionResult
    request_error: bool = False


def response_body(outcome: Outcome) -> dict[str, Any]:
    """The GraphQL response: ``errors`` (if any), and ``data`` unless the request failed before
    execution (the GraphQL-over-HTTP spec omits it then)."""
    result = outcome.result
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if not outcome.request_error:
        body["data"] = result.data
    return body


def _operation(schema: TenantSchema, request: GraphQLRequest) -> OperationDefinitionNode | None:
    document = schema.document(request.query)
    if isinstance(document, list):
        return None
    return get_operation_ast(document, request.operation_name)


def authorize(
    access: TenantAccess, request: GraphQLRequest, document: DocumentNode, *, inline: bool = False
) -> OperationDefinitionNode | None:
    """Check that the caller may run the request's operation: the operations it needs
    (:func:`graphql_operation_scopes`), and no mutation over GET. Returns the operation (None:
    the document names no such operation, which execution reports)."""
    operation = get_operation_ast(document, request.operation_name)
    if operation is not None and operation.operation is OperationType.MUTATION:
        if not request.allow_mutation:
            raise MutationOverGetError
        if inline:
            raise RunInPool
    for scope in sorted(graphql_operation_scopes(operation, document)):
        access.principal.check_scope(scope)
    return operation


def _runs_locally(operation: OperationDefinitionNode, access: TenantAccess) -> bool:
    """Whether executing ``operation`` reads only memory and the tenant's embedded entity store
    (so it computes rather than waits, see :class:`.graphql_pool.GraphQLPool`)."""
    if operation.operation is not OperationType.QUERY:
        return False
    if not all(
        isinstance(selection, FieldNode) and selection.name.value in _LOCAL_ROOT_FIELDS
        for selection in operation.selection_set.selections
    ):
        return False
    from workbench.storage.sqlite import SqliteEntityStore

    return isinstance(access.tenant.entity_store, SqliteEntityStore)


def _before_execution(result: ExecutionResult) -> bool:
    """Whether a result without data failed before execution began (variable coercion): such
    errors have no path, field errors always do."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(not e.path for e in errors)


def _schema(connection: HTTPConnection, access: TenantAccess, *, inline: bool) -> TenantSchema:
    service = service_state(connection)
    if inline:
        schema: TenantSchema | None = service.schemas.current(access.tenant)
        if schema is None:
            raise RunInPool
        return schema
    return service.schema_for(access.tenant)  # type: ignore[no-any-return]


def execute(
    connection: HTTPConnection,
    access: TenantAccess,
    request: GraphQLRequest,
    *,
    inline: bool = False,
) -> tuple[Outcome, bool]:
    """Authorize and execute a query or mutation; the outcome and whether the request may run on
    the event loop thread next time. Runs in a pool thread, or with ``inline`` on the event loop
    (then it raises :class:`RunInPool` before doing anything that may wait: a schema build, a
    mutation). Raises :class:`~workbench.errors.Forbidden` when an operation is not allowed."""
    with ExitStack() as model_scope:
        # the schema and the query's resolvers see one model, read once
        model_scope.enter_context(one_model_stamp())
        service = service_state(connection)
        schema = _schema(connection, access, inline=inline)
        document = schema.document(request.query)
        operation = None
        if not isinstance(document, list):
            operation = authorize(access, request, document, inline=inline)
        if operation is None or operation.operation is not OperationType.QUERY:
            model_scope.close()  # a mutation may import a library: later reads see it
        context = service.schemas.context(
            access.tenant, principal=access.principal.subject, request_id=current_request_id()
        )
        result = schema.execute_sync(
            request.query, request.variables, context=context, operation_name=request.operation_name
        )
    before = isinstance(document, list) or operation is None or _before_execution(result)
    mutation = operation is not None and operation.operation is OperationType.MUTATION
    if mutation and not result.errors and not isinstance(document, list):
        assert operation is not None
        record_mutation(connection, access, mutation_fields(operation, document))
    local = operation is not None and _runs_locally(operation, access)
    return Outcome(result, request_error=before), local


def record_mutation(connection: HTTPConnection, access: TenantAccess, fields: list[str]) -> None:
    """Write the audit entry of a successful mutation (who, what, where, request id)."""
    audit_log = service_state(connection).audit_log
    if audit_log is None:
        return
    transport = "websocket" if connection.scope.get("type") == "websocket" else "http"
    try:
        audit_log.record(
            access.tenant.id,
            actor=access.principal.subject,
            action="graphql.mutation",
            target=connection.url.path,
            request_id=current_request_id(),
            details={"fields": fields, "transport": transport},
        )
    except Exception:  # the mutation happened; a failing audit write must be seen
        log.exception("could not write the audit entry of a GraphQL mutation")


async def subscribe(
    connection: HTTPConnection, access: TenantAccess, request: GraphQLRequest
) -> AsyncIterator[ExecutionResult] | Outcome:
    """Authorize and start a subscription: its results, or an outcome with errors."""
    service = service_state(connection)
    schema: TenantSchema = await service.pool.run(service.schema_for, access.tenant)
    document = schema.document(request.query)
    if not isinstance(document, list):
        authorize(access, request, document)
    context = service.schemas.context(access.tenant, principal=access.principal.subject)
    outcome = await schema.subscribe(
        request.query, request.variables, context=context, operation_name=request.operation_name
    )
    if isinstance(outcome, ExecutionResult):
        return Outcome(outcome, request_error=_before_execution(outcome))
    return outcome


async def operation_kind(
    connection: HTTPConnection, access: TenantAccess, request: GraphQLRequest
) -> OperationType | None:
    """The kind of the request's operation (None: the document is invalid or names no such
    operation)."""
    service = service_state(connection)
    schema: TenantSchema = await service.pool.run(service.schema_for, access.tenant)
    operation = _operation(schema, request)
    return operation.operation if operation is not None else None
