"""A :class:`TenantSchema` as a Strawberry schema, for Strawberry's HTTP and WebSocket views.

Strawberry's views (FastAPI ``GraphQLRouter``, ASGI ``GraphQL``) speak to a
:class:`strawberry.Schema`. This subclass keeps Strawberry's request pipeline (parsing,
validation, subscriptions over ``graphql-transport-ws``) but runs it on the generated graphql-core
schema with :class:`FastExecutor`, and shapes errors like :meth:`TenantSchema.execute_sync`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

import strawberry
from graphql import GraphQLError, GraphQLSchema, print_schema
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from workbench.graphql.errors import shape_error
from workbench.graphql.executor import FastExecutor

__all__ = ["StrawberryTenantSchema"]


class _GeneratedSchema(Protocol):
    """What is used of :class:`workbench.graphql.schema.TenantSchema` (a protocol, so this
    module does not import the schema module that imports it)."""

    graphql_schema: GraphQLSchema


class _Executor(FastExecutor):
    def __init__(self, *args: Any, operation_extensions: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operation_extensions = operation_extensions


@strawberry.type
class _Placeholder:
    """Stands in while Strawberry initialises; replaced by the generated schema."""

    ok: bool = True


class StrawberryTenantSchema(strawberry.Schema):
    """Strawberry schema running one tenant's generated schema."""

    def __init__(self, tenant_schema: _GeneratedSchema) -> None:
        super().__init__(query=_Placeholder)
        self.tenant_schema = tenant_schema
        self._schema = tenant_schema.graphql_schema
        self.execution_context_class = _Executor

    def as_str(self) -> str:
        return print_schema(self._schema)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Replaced in place: the list is the one that goes back to the client.
        for index, error in enumerate(errors):
            errors[index] = shape_error(error)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Queries and mutations run in a worker thread (the stores are synchronous)."""
        return await asyncio.to_thread(
            self.execute_sync,
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
