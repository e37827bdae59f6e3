"""GraphQL cost limits: document size, depth, aliases and an estimated cost, checked before
execution; a time limit and cancellation while executing; heavy operations take a tenant slot.

The cost estimate counts every field once per item its enclosing lists may return: a field with
a ``first`` (or ``limit``) argument multiplies everything below it by that value (by
``graphql_default_page`` when absent, 1000 for stream reads, as their resolver does), so
``rtMeters(first: 100) { items { name parent(first: 10) { items { name } } } }`` costs about
100 + 100 x 10 x 2 fields. Fragments are measured once each (a fragment reused at many places
costs its size at each, without being walked again).

All limits come from :func:`workbench.limits.current_limits`: inside a service request they are
the configured ones; outside (in-process use) none of these checks apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    VariableNode,
    get_named_type,
    parse,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLObjectType

from workbench.errors import Cancelled, LimitExceeded, TimedOut
from workbench.graphql.executor import FastExecutor
from workbench.limits import (
    Cancellation,
    Limits,
    current_cancellation,
    current_limits,
    heavy_slots,
    use_limits,
)

__all__ = [
    "LimitedExecutor",
    "OperationSize",
    "check_operation",
    "guard_operation",
    "measure",
    "parse_document",
]

_META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}
#: the page size a stream read assumes without ``first`` (see graphql/streams.py)
STREAM_DEFAULT_PAGE = 1000


@dataclass(frozen=True)
class OperationSize:
    """What :func:`measure` found: nesting depth, aliased fields, estimated cost."""

    depth: int
    aliases: int
    cost: int


def parse_document(query: str) -> DocumentNode:
    """``query`` parsed, within the current token and field limits (before validation, whose
    work grows with the square of repeated fields)."""
    limits = current_limits()
    if limits is None:
        return parse(query)
    try:
        document = parse(query, max_tokens=limits.graphql_max_tokens)
    except GraphQLError as error:
        if "tokens" in error.message and "aborted" in error.message:
            raise LimitExceeded(
                f"the GraphQL document has more than {limits.graphql_max_tokens} tokens "
                "(WORKBENCH_GRAPHQL_MAX_TOKENS); send values as variables and split large "
                "requests"
            ) from None
        raise
    fields = sum(1 for _ in _field_nodes(document))
    if fields > limits.graphql_max_fields:
        raise LimitExceeded(
            f"the GraphQL document selects {fields} fields, more than the limit of "
            f"{limits.graphql_max_fields} (WORKBENCH_GRAPHQL_MAX_FIELDS); split the request"
        )
    return document


def _field_nodes(document: DocumentNode) -> Iterator[FieldNode]:
    """Every field selection written in ``document`` (fragments once, not expanded)."""
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                stack.append(inner)


class _Measure:
    """Walks an operation bottom-up: (depth, cost of one pass). Nested introspection lists
    (``types { fields { type { fields ...``) are refused by graphql-core's own validation
    (MaxIntrospectionDepthRule), before this runs."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        default_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.default_page = default_page
        self.memo: dict[str, tuple[int, int]] = {}
        self.active: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode, parent: Any) -> tuple[int, int]:
        depth = cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                d, c = self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                d, c = self.selection_set(selection.selection_set, on or parent)
            elif isinstance(selection, FragmentSpreadNode):
                d, c = self.fragment(selection.name.value)
            else:  # pragma: no cover - no other selection kinds exist
                continue
            depth = max(depth, d)
            cost += c
        return depth, cost

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:  # validation reports these
            return 0, 0
        self.active.add(name)
        on = self.schema.get_type(definition.type_condition.name.value)
        found = self.selection_set(definition.selection_set, on)
        self.active.discard(name)
        self.memo[name] = found
        return found

    def field(self, node: FieldNode, parent: Any) -> tuple[int, int]:
        name = node.name.value
        field_def = _META_FIELDS.get(name)
        if field_def is None and isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field_def = parent.fields.get(name)
        if node.selection_set is None or field_def is None:
            return 1, 1
        child = get_named_type(field_def.type)
        depth, cost = self.selection_set(node.selection_set, child)
        return depth + 1, 1 + self.multiplier(node, field_def.args) * cost

    def multiplier(self, node: FieldNode, args: Mapping[str, Any]) -> int:
        for arg in ("first", "limit"):
            if arg not in args:
                continue
            given = self.argument(node, arg)
            if given is not None:
                return max(given, 1)
            if arg == "first":
                return STREAM_DEFAULT_PAGE if "from" in args else self.default_page
        return 1

    def argument(self, node: FieldNode, name: str) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                return given if isinstance(given, int) and not isinstance(given, bool) else None
        return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            name is None or (definition.name is not None and definition.name.value == name)
        ):
            return definition
    return None


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    *,
    default_page: int = 100,
) -> OperationSize:
    """Depth, aliases and estimated cost of the operation of a validated ``document``."""
    operation = _operation(document, operation_name)
    if operation is None:
        return OperationSize(0, 0, 0)
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measured = _Measure(schema, fragments, variables or {}, default_page)
    depth, cost = measured.selection_set(operation.selection_set, root)
    aliases = sum(1 for node in _field_nodes(document) if node.alias is not None)
    return OperationSize(depth, aliases, cost)


def check_size(size: OperationSize, limits: Limits) -> None:
    """Raise :class:`LimitExceeded` when ``size`` is over one of ``limits``."""
    if size.depth > limits.graphql_max_depth:
        raise LimitExceeded(
            f"the operation nests {size.depth} levels deep, more than the limit of "
            f"{limits.graphql_max_depth} (WORKBENCH_GRAPHQL_MAX_DEPTH); fetch deeper levels "
            "with a second query"
        )
    if size.aliases > limits.graphql_max_aliases:
        raise LimitExceeded(
            f"the document uses {size.aliases} aliases, more than the limit of "
            f"{limits.graphql_max_aliases} (WORKBENCH_GRAPHQL_MAX_ALIASES)"
        )
    if size.cost > limits.graphql_max_cost:
        raise LimitExceeded(
            f"the operation's estimated cost is {size.cost}, over the budget of "
            f"{limits.graphql_max_cost} per request (WORKBENCH_GRAPHQL_MAX_COST); ask for "
            "smaller pages (`first`) or fewer nested lists, and page with `after`"
        )


def check_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
) -> OperationSize | None:
    """Measure the operation and check it against the current limits (None: no limits)."""
    limits = current_limits()
    if limits is None:
        return None
    size = _measured(schema, document, operation_name, variables, limits.graphql_default_page)
    check_size(size, limits)
    return size


#: (schema, document, operation, variables, default page) -> size, for the documents a service
#: sees again and again (the entry holds the schema and document, so their ids stay theirs)
_SIZES: dict[tuple[Any, ...], tuple[GraphQLSchema, DocumentNode, OperationSize]] = {}
_SIZES_KEPT = 1024


def _measured(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    default_page: int,
) -> OperationSize:
    """:func:`measure`, remembered per document and variables (a walk of the whole operation)."""
    try:
        values = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else b""
    except TypeError:  # what orjson does not encode: measure afresh
        return measure(schema, document, operation_name, variables, default_page=default_page)
    key = (id(schema), id(document), operation_name, values, default_page)
    known = _SIZES.get(key)
    if known is not None and known[0] is schema and known[1] is document:
        return known[2]
    size = measure(schema, document, operation_name, variables, default_page=default_page)
    if len(_SIZES) >= _SIZES_KEPT:
        _SIZES.clear()
    _SIZES[key] = (schema, document, size)
    return size


class LimitedExecutor(FastExecutor):
    """:class:`FastExecutor` that stops once the request's :class:`Cancellation` fires (client
    gone, time up): every field completed after that fails at once, so the work ends soon."""

    #: completions between two looks at the clock
    CHECK_EVERY = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._countdown = self.CHECK_EVERY
        self._stopped = False
        #: the request's (execution runs in the request's context, see guard_operation)
        self.cancellation: Cancellation = current_cancellation() or Cancellation()

    def _check(self) -> None:
        self._countdown -= 1
        if self._stopped or self._countdown <= 0 or self.cancellation.cancelled:
            self._countdown = self.CHECK_EVERY
            try:
                self.cancellation.check()
            except (Cancelled, TimedOut):
                # graphql-core catches it per field and goes on with the next item: from now
                # on every field fails at once, so the rest of the work is skipped
                self._stopped = True
                raise

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().execute_field(*args, **kwargs)

    def complete_object_value(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().complete_object_value(*args, **kwargs)

    def complete_list_value(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().complete_list_value(*args, **kwargs)


@contextmanager
def guard_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    tenant_id: str,
) -> Iterator[type[FastExecutor]]:
    """Check the operation against the current limits before it runs and yield the executor
    class to run it with; a heavy one holds a tenant slot meanwhile (429 when none is free).
    Queries get the time limit; after the block, a cancelled or timed-out run raises."""
    limits = current_limits()
    size = check_operation(schema, document, variables, operation_name)
    if limits is None or size is None:
        yield FastExecutor
        return
    operation = _operation(document, operation_name)
    is_query = operation is not None and operation.operation is OperationType.QUERY
    request = current_cancellation() if is_query else None
    slot = (
        heavy_slots.hold(tenant_id, f"this GraphQL operation (cost {size.cost})", limits)
        if size.cost >= limits.heavy_cost
        else _nothing()
    )
    with slot:
        if request is None:
            yield FastExecutor
            return
        # the operation's own deadline (a WebSocket runs several operations at once)
        cancellation = request.child()
        with (
            use_limits(limits, cancellation),
            cancellation.limit_time(
                limits.graphql_timeout_s,
                f"the GraphQL query (limit {limits.graphql_timeout_s:g} s, "
                "WORKBENCH_GRAPHQL_TIMEOUT_S)",
            ),
        ):
            yield LimitedExecutor
            if cancellation.expired():
                cancellation.check()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
