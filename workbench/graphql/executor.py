"""A graphql-core executor with a fast path for plain dict sources.

graphql-core resolves every field through the same machinery (resolve info, default resolver,
completion dispatch), which dominates the time of large results (Strawberry issue #3544). Entity,
record and connection values here are plain dicts, so for each object type and selection this
executor compiles a *plan* once per request:

- the leaf fields without a resolver are read straight from the dict and checked by a generated
  function (one dict lookup and one type check per field; values whose type is not the scalar's
  own go through the type's ``coerce_output_value``);
- objects and lists read from the dict (no resolver) are completed without building resolve info;
- resolvers that batch (they carry a ``peek(source, field_node_id)`` attribute returning the
  value or ``Undefined``) are asked for an already loaded value before being called;
- lists of such objects are completed in one loop, without a completion dispatch per item;
- everything else goes through graphql-core's normal path.

Results and errors are the same as graphql-core's: a leaf that does not coerce, or a null in a
non-null leaf, sends the whole object down the normal path (the leaf check has no side effects),
which reports it as usual; an error while completing a list item is handled exactly as
graphql-core's ``complete_list_item_value`` does.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.executor import Executor, to_nodes
from graphql.pyutils import AwaitableOrValue, Path

from workbench.graphql.direct import DIRECT_COMPLETION, DirectItems
from workbench.graphql.leaves import leaf_check_lines, leaf_namespace

__all__ = ["FastExecutor"]

_VALUE = 3  # an object or list read from the dict (no resolver)
_CACHED = 4  # a resolver that may already hold the value (see ``peek``)
_NORMAL = 5  # graphql-core's execute_field


class _Other:
    """A field completed after the leaves: an object or list in the dict, a batching resolver,
    or anything else (graphql-core's ``execute_field``)."""

    __slots__ = (
        "details",
        "field_def",
        "field_name",
        "field_type",
        "kind",
        "node_id",
        "nullable",
        "object_type",
        "peek",
        "response_name",
        "sub",
    )

    def __init__(
        self,
        response_name: str,
        kind: int,
        field_type: Any = None,
        details: Any = None,
        field_name: str | None = None,
        peek: Any = None,
        field_def: Any = None,
    ) -> None:
        self.response_name = response_name
        self.field_def = field_def
        self.kind = kind
        self.field_type = field_type
        self.details = details
        self.field_name = field_name
        self.peek = peek
        self.node_id = id(details[0].node) if details else 0
        non_null = isinstance(field_type, GraphQLNonNull)
        inner = field_type.of_type if non_null else field_type
        #: an object type completed straight from a dict value (no abstract type, no check)
        self.object_type: GraphQLObjectType | None = (
            inner
            if kind != _NORMAL and isinstance(inner, GraphQLObjectType) and inner.is_type_of is None
            else None
        )
        self.nullable = not non_null
        #: the object type's plan for this field's selection (filled on first use)
        self.sub: _Plan | None = None


#: distinct selections kept per object type (a bound against unbounded query variety)
_MAX_SIGNATURES = 256


class _Plan:
    """How to complete one object type for one selection (see the module docstring)."""

    __slots__ = ("leaves", "others")

    def __init__(
        self, leaves: Callable[[dict[str, Any]], dict[str, Any] | None], others: list[_Other]
    ):
        #: reads the leaves (and ``__typename``) into a new result dict in selection order, with
        #: ``None`` placeholders for the other fields; None: take the normal path
        self.leaves = leaves
        #: the fields completed after the leaves, in selection order
        self.others = others


#: compiled leaf readers by object type and field signature, shared by every request (the
#: signature is what the generated code depends on; entries go with their schema's types)
_COMPILED: weakref.WeakKeyDictionary[
    GraphQLObjectType, dict[tuple[Any, ...], Callable[[dict[str, Any]], dict[str, Any] | None]]
] = weakref.WeakKeyDictionary()
_COMPILED_LOCK = threading.Lock()


def _leaf_reader(
    return_type: GraphQLObjectType, fields: list[tuple[str, str | None, Any, bool]]
) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The (cached) compiled leaf reader of ``fields`` on ``return_type``."""
    signature = tuple(fields)
    with _COMPILED_LOCK:
        by_signature = _COMPILED.get(return_type)
        if by_signature is None:
            by_signature = _COMPILED[return_type] = {}
        found = by_signature.get(signature)
    if found is None:
        found = _compile_leaves(return_type, fields)
        with _COMPILED_LOCK:
            if len(by_signature) >= _MAX_SIGNATURES:
                by_signature.clear()
            by_signature[signature] = found
    return found


def _compile_leaves(
    return_type: GraphQLObjectType, fields: list[tuple[str, str | None, Any, bool]]
) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """A function reading ``fields`` (response name, field name or None for a placeholder /
    ``__typename``, leaf type, non-null) from a dict source.

    The generated code only embeds ``repr`` of field and response names (GraphQL names) and
    refers to everything else through its namespace.
    """
    namespace = leaf_namespace(return_type.name)
    lines = ["def leaves(source):", "    get = source.get"]
    items: list[str] = []
    for index, (response_name, field_name, leaf_type, non_null) in enumerate(fields):
        var = f"v{index}"
        if field_name is None:
            items.append(
                f"{response_name!r}: {'_typename' if leaf_type == '__typename' else 'None'}"
            )
            continue
        lines.append(f"    {var} = get({field_name!r})")
        lines += leaf_check_lines(index, leaf_type, non_null, namespace)
        items.append(f"{response_name!r}: {var}")
    lines.append("    return {" + ", ".join(items) + "}")
    exec("\n".join(lines), namespace)  # generated from GraphQL names (repr) only
    leaves: Callable[[dict[str, Any]], dict[str, Any] | None] = namespace["leaves"]
    return leaves


class FastExecutor(Executor[Any]):
    """Executor reading resolver-less fields of dict sources without per-field overhead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], _Plan] = {}
        self._list_plans: dict[tuple[Any, int], tuple[GraphQLObjectType, _Plan] | None] = {}
        manager = self.middleware_manager
        self._fast = not (manager is not None and getattr(manager, "middlewares", None))

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        if not self._fast:
            return super().execute_operation(*args, **kwargs)
        # resolvers may hand back lists already completed (:class:`DirectItems`)
        token = DIRECT_COMPLETION.set(True)
        try:
            return super().execute_operation(*args, **kwargs)
        finally:
            DIRECT_COMPLETION.reset(token)

    # ---- plans ------------------------------------------------------------------------------

    def _plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> _Plan:
        key = (return_type, id(field_details_list))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        grouped_field_set = self.collect_subfields(return_type, field_details_list)[0]
        fields: list[tuple[str, str | None, Any, bool]] = []
        others: list[_Other] = []
        for response_name, details in grouped_field_set.items():
            field_name = details[0].node.name.value
            if field_name == "__typename":
                fields.append((response_name, None, "__typename", False))
                continue
            field_def = self.schema.get_field(return_type, field_name)
            field_type: GraphQLOutputType | None = field_def.type if field_def else None
            fields.append((response_name, None, None, False))  # a placeholder unless a leaf
            if field_def is None or field_type is None:
                others.append(_Other(response_name, _NORMAL, details=details))
                continue
            if field_def.resolve is not None:
                peek = getattr(field_def.resolve, "peek", None)
                if peek is not None and not details[0].node.arguments:
                    others.append(
                        _Other(
                            response_name,
                            _CACHED,
                            field_type,
                            details,
                            peek=peek,
                            field_def=field_def,
                        )
                    )
                else:
                    others.append(_Other(response_name, _NORMAL, details=details))
                continue
            non_null = is_non_null_type(field_type)
            inner = field_type.of_type if non_null else field_type  # type: ignore[union-attr]
            if is_leaf_type(inner):
                fields[-1] = (response_name, field_name, inner, non_null)
            else:
                others.append(
                    _Other(
                        response_name, _VALUE, field_type, details, field_name, field_def=field_def
                    )
                )
        plan = _Plan(_leaf_reader(return_type, fields), others)
        # a memoized collect_subfields keeps field_details_list alive, so its id stays unique
        self._plans[key] = plan
        return plan

    def _list_plan(
        self, return_type: GraphQLList[Any], field_details_list: Any
    ) -> tuple[GraphQLObjectType, _Plan] | None:
        """The plan of the items of a list of objects, or None when items need the normal path
        (abstract or checked types, ``@stream``)."""
        key = (return_type, id(field_details_list))
        try:
            return self._list_plans[key]
        except KeyError:
            pass
        item_type = return_type.of_type
        inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        found: tuple[GraphQLObjectType, _Plan] | None = None
        if (
            isinstance(inner, GraphQLObjectType)
            and inner.is_type_of is None
            and not any(details.node.directives for details in field_details_list)
        ):
            found = (inner, self._plan(inner, field_details_list))
        self._list_plans[key] = found
        return found

    # ---- completion -------------------------------------------------------------------------

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if not self._fast or return_type.is_type_of is not None or type(result) is not dict:
            return super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
        plan = self._plan(return_type, field_details_list)
        out = plan.leaves(result)
        if out is None:
            return self._normal(return_type, field_details_list, info, path, result)
        if not plan.others:
            return out
        return self._complete_others(
            return_type, plan, info, path, None, result, out, position_context
        )

    def _complete_others(
        self,
        return_type: GraphQLObjectType,
        plan: _Plan,
        info: GraphQLResolveInfo[Any],
        path: Path,
        index: int | None,
        result: dict[str, Any],
        out: dict[str, Any],
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """Complete ``plan.others`` of ``result`` into ``out``; the object's path is ``path``, or
        ``path`` + ``index`` for a list item (paths are only built when something needs them)."""
        awaitables: list[str] = []
        object_path: Path | None = path if index is None else None
        for other in plan.others:
            response_name = other.response_name
            kind = other.kind
            value: Any = Undefined
            if kind == _VALUE:
                value = result.get(other.field_name)  # type: ignore[arg-type]
            elif kind == _CACHED:
                value = other.peek(result, other.node_id)
            if value is not Undefined and (object_type := other.object_type) is not None:
                # an object straight from the dict: its leaves, without completion dispatch
                if value is None and other.nullable:
                    out[response_name] = None
                    continue
                if type(value) is dict:
                    sub = other.sub
                    if sub is None:
                        sub = other.sub = self._plan(object_type, other.details)
                    if not sub.others and (leaves := sub.leaves(value)) is not None:
                        out[response_name] = leaves
                        continue
            if object_path is None:
                object_path = path.add_key(index, None)  # type: ignore[arg-type]
            field_path = Path(object_path, response_name, return_type.name)
            if value is not Undefined:
                # the field's own resolve info (error messages and type resolution name it)
                field_info = self.build_resolve_info(
                    other.field_def, to_nodes(other.details), return_type, field_path
                )
                completed = self._complete(
                    other.field_type, other.details, field_info, field_path, value, position_context
                )
            else:
                completed = self.execute_field(
                    return_type, result, other.details, field_path, position_context
                )
            if completed is Undefined:
                del out[response_name]
                continue
            out[response_name] = completed
            if self.is_awaitable(completed):
                awaitables.append(response_name)
        if not awaitables:
            return out
        return _gather(out, awaitables)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        if type(result) is DirectItems:  # completed by the resolver (see graphql.direct)
            return list(result)
        found = (
            self._list_plan(return_type, field_details_list)
            if self._fast and type(result) is list
            else None
        )
        if found is None:
            return super().complete_list_value(
                return_type, field_details_list, info, path, result, position_context
            )
        object_type, plan = found
        item_type = return_type.of_type
        leaves, others = plan.leaves, plan.others
        completed: list[Any] = []
        append = completed.append
        awaitable_indices: list[int] = []
        for index, item in enumerate(result):
            out = leaves(item) if type(item) is dict else None
            if out is not None and not others:
                append(out)
                continue
            if out is None:  # the normal path, with graphql-core's per-item handling
                if self.complete_list_item_value(
                    item,
                    completed,
                    item_type,
                    field_details_list,
                    info,
                    path.add_key(index, None),
                    position_context,
                ):
                    awaitable_indices.append(index)
                continue
            try:
                value = self._complete_others(
                    object_type, plan, info, path, index, item, out, position_context
                )
            except Exception as raw_error:
                item_path = path.add_key(index, None)
                self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                append(None)
                continue
            if self.is_awaitable(value):
                item_path = path.add_key(index, None)
                append(self._await_item(value, item_type, field_details_list, item_path))
                awaitable_indices.append(index)
            else:
                append(value)
        if not awaitable_indices:
            return completed
        return _gather_items(completed, awaitable_indices)

    async def _await_item(
        self, value: Awaitable[Any], item_type: Any, field_details_list: Any, item_path: Path
    ) -> Any:
        try:
            return await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, field_details_list, item_path)
            return None

    def _complete(
        self,
        field_type: GraphQLOutputType,
        details: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """Complete a value obtained without calling a resolver (as ``execute_field`` would)."""
        try:
            return self.complete_value(field_type, details, info, path, value, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_type, details, path)
            return None

    def _normal(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, None
        )


async def _gather(out: dict[str, Any], names: list[str]) -> dict[str, Any]:
    for name in names:
        awaitable: Awaitable[Any] = out[name]
        out[name] = await awaitable
    return out


async def _gather_items(items: list[Any], indices: list[int]) -> list[Any]:
    for index in indices:
        awaitable: Awaitable[Any] = items[index]
        items[index] = await awaitable
    return items
