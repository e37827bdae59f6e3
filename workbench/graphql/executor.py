"""A graphql-core executor with a fast path for plain dict sources.

graphql-core resolves every field through the same machinery (resolve info, default resolver,
completion dispatch), which dominates the time of large results (Strawberry issue #3544). Entity,
record and connection values here are plain dicts, so for each object value this executor reads
leaf fields that have no resolver straight from the dict and coerces them with their scalar or
enum type, completes objects read from the dict without building resolve info, and asks
resolvers that batch (they carry a ``peek(source, field_node_id)`` attribute returning the value
or ``Undefined``) for an already loaded value before calling them; everything else goes through
graphql-core's normal path.
Results and errors are the same as graphql-core's (a leaf that does not coerce, or a null in a
non-null leaf, sends the whole object down the normal path, which reports it as usual).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.executor import Executor
from graphql.pyutils import AwaitableOrValue, Path

__all__ = ["FastExecutor"]

_TYPENAME = 0
_LEAF = 1
_NORMAL = 2
_VALUE = 3  # an object or list read from the dict (no resolver)
_CACHED = 4  # a resolver that may already hold the value (see ``peek``)

# response name, field name, kind, leaf type (or None), non-null, field details, as-is type
_Step = tuple[str, str, int, Any, bool, Any, Any]

#: built-in scalars whose output coercion returns values of this Python type unchanged
_AS_IS: dict[Any, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLFloat: float,
    GraphQLBoolean: bool,
}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class FastExecutor(Executor[Any]):
    """Executor reading resolver-less leaf fields of dict sources without per-field overhead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], list[_Step]] = {}
        manager = self.middleware_manager
        self._fast = not (manager is not None and getattr(manager, "middlewares", None))

    def _plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> list[_Step]:
        key = (return_type, id(field_details_list))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        grouped_field_set = self.collect_subfields(return_type, field_details_list)[0]
        plan = []
        for response_name, details in grouped_field_set.items():
            field_name = details[0].node.name.value
            if field_name == "__typename":
                plan.append((response_name, field_name, _TYPENAME, None, False, details, None))
                continue
            field_def = self.schema.get_field(return_type, field_name)
            field_type: GraphQLOutputType | None = field_def.type if field_def else None
            if field_def is None or field_type is None:
                plan.append((response_name, field_name, _NORMAL, None, False, details, None))
                continue
            if field_def.resolve is not None:
                peek = getattr(field_def.resolve, "peek", None)
                if peek is not None and not details[0].node.arguments:
                    plan.append(
                        (response_name, field_name, _CACHED, field_type, False, details, peek)
                    )
                else:
                    plan.append((response_name, field_name, _NORMAL, None, False, details, None))
                continue
            non_null = is_non_null_type(field_type)
            inner = field_type.of_type if non_null else field_type  # type: ignore[union-attr]
            if is_leaf_type(inner):
                as_is = int if inner is GraphQLInt else _AS_IS.get(inner)
                plan.append((response_name, field_name, _LEAF, inner, non_null, details, as_is))
            else:
                plan.append((response_name, field_name, _VALUE, field_type, False, details, None))
        # a memoized collect_subfields keeps field_details_list alive, so its id stays unique
        self._plans[key] = plan
        return plan

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
        out: dict[str, Any] = {}
        normal = False
        get = result.get
        # First every side-effect-free leaf, so falling back to the normal path is still safe.
        for response_name, field_name, kind, leaf_type, non_null, _details, as_is in plan:
            if kind == _LEAF:
                value = get(field_name)
                if value is None:
                    if non_null:
                        return self._normal(return_type, field_details_list, info, path, result)
                    out[response_name] = None
                    continue
                value_type = type(value)
                if value_type is as_is and (value_type is not int or _INT_MIN <= value <= _INT_MAX):
                    out[response_name] = value
                    continue
                try:
                    coerced = _coerce(leaf_type, value)
                except Exception:  # the normal path reports it with the right path
                    return self._normal(return_type, field_details_list, info, path, result)
                if coerced is None or coerced is Undefined:
                    return self._normal(return_type, field_details_list, info, path, result)
                out[response_name] = coerced
            elif kind == _TYPENAME:
                out[response_name] = return_type.name
            else:
                out[response_name] = None
                normal = True
        if not normal:
            return out
        awaitables: list[str] = []
        for response_name, field_name, kind, field_type, _non_null, details, peek in plan:
            if kind < _NORMAL:
                continue
            field_path = Path(path, response_name, return_type.name)
            if kind == _VALUE:
                completed = self._complete(
                    field_type, details, info, field_path, get(field_name), position_context
                )
            elif kind == _CACHED and (value := peek(result, id(details[0].node))) is not Undefined:
                completed = self._complete(
                    field_type, details, info, field_path, value, position_context
                )
            else:
                completed = self.execute_field(
                    return_type, result, details, field_path, position_context
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


def _coerce(leaf_type: GraphQLLeafType, value: Any) -> Any:
    return leaf_type.coerce_output_value(value)


async def _gather(out: dict[str, Any], names: list[str]) -> dict[str, Any]:
    for name in names:
        awaitable: Awaitable[Any] = out[name]
        out[name] = await awaitable
    return out
