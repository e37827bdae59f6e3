"""Generated code that checks and output-coerces leaf values as graphql-core would.

Shared by the executor's compiled leaf readers (:mod:`.executor`) and the direct completion of
list items (:mod:`.direct`): one dict lookup and one type check per field; a value whose type
is not the scalar's own goes through the type's ``coerce_output_value``.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLString,
    Undefined,
)

__all__ = ["leaf_check_lines", "leaf_namespace"]

#: built-in scalars whose output coercion returns values of this Python type unchanged
_AS_IS: dict[Any, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLFloat: float,
    GraphQLBoolean: bool,
}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def leaf_namespace(typename: str) -> dict[str, Any]:
    """The names the code of :func:`leaf_check_lines` refers to."""
    return {
        "_Undefined": Undefined,
        "_INT_MIN": _INT_MIN,
        "_INT_MAX": _INT_MAX,
        "_int": int,
        "_str": str,
        "_typename": typename,
    }


def leaf_check_lines(
    index: int, leaf_type: Any, non_null: bool, namespace: dict[str, Any]
) -> list[str]:
    """Generated lines (one level of indentation) that check and output-coerce the value in
    ``v<index>`` as ``leaf_type`` would, or ``return None`` (take the normal path: a null in a
    non-null field, a value the type does not coerce). Names go into ``namespace`` (which starts
    as :func:`leaf_namespace`)."""
    var = f"v{index}"
    coerce = f"_coerce{index}"
    namespace[coerce] = leaf_type.coerce_output_value
    if_none = "return None" if non_null else "pass"
    lines = [f"    if {var} is None:", f"        {if_none}"]
    if leaf_type is GraphQLInt:
        lines.append(
            f"    elif {var}.__class__ is not _int or not (_INT_MIN <= {var} <= _INT_MAX):"
        )
    elif (as_is := _AS_IS.get(leaf_type)) is not None:
        type_name = f"_type{index}"
        namespace[type_name] = as_is
        lines.append(f"    elif {var}.__class__ is not {type_name}:")
    elif isinstance(leaf_type, GraphQLEnumType):
        lookup = getattr(leaf_type, "_value_lookup", None)
        if isinstance(lookup, dict) and all(isinstance(k, str) for k in lookup):
            names = f"_names{index}"
            namespace[names] = dict(lookup)
            lines.append(f"    elif {var}.__class__ is _str and {var} in {names}:")
            lines.append(f"        {var} = {names}[{var}]")
        lines.append("    else:")
    else:
        lines.append("    else:")
    lines.append("        try:")
    lines.append(f"            {var} = {coerce}({var})")
    lines.append("        except Exception:")
    lines.append("            return None")
    lines.append(f"        if {var} is None or {var} is _Undefined:")
    lines.append("            return None")
    return lines
