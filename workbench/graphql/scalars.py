"""Custom scalars and the small fixed object types every tenant schema shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
    ValueNode,
    value_from_ast_untyped,
)
from graphql.language import IntValueNode, StringValueNode

from workbench.query.model import Operator

__all__ = [
    "AGGREGATE_FUNCTION_ENUM",
    "DATETIME",
    "DELETE_OPTION_ENUM",
    "FIELD_FILTER_INPUT",
    "GEO_POINT",
    "GEO_POINT_INPUT",
    "JSON",
    "LONG",
    "MOD_OPTION_ENUM",
    "OPERATOR_ENUM",
    "PAGE_INFO",
    "RT_ENTITY_ID_INPUT",
    "SEARCH_FILTER_INPUT",
    "SORT_ORDER_ENUM",
    "SORT_ORDER_INPUT",
    "UPDATE_TYPE_ENUM",
    "format_datetime",
    "list_args",
]


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (the form every date-time leaves the API in)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _serialize_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"DateTime cannot represent {value!r}")


def _parse_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    if not isinstance(value, str):
        raise TypeError(
            f"DateTime expects an ISO 8601 string such as '2026-01-01T00:00:00Z', got {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TypeError(
            f"{value!r} is not an ISO 8601 date-time; write e.g. '2026-01-01T00:00:00Z'"
        ) from None
    if parsed.tzinfo is None:
        raise TypeError(f"{value!r} has no time zone; add 'Z' or an offset such as '+01:00'")
    return value


def _parse_datetime_literal(node: ValueNode, _variables: Any = None) -> str:
    if not isinstance(node, StringValueNode):
        raise TypeError('DateTime expects a string literal such as "2026-01-01T00:00:00Z"')
    return _parse_datetime(node.value)


DATETIME = GraphQLScalarType(
    "DateTime",
    description="An ISO 8601 date-time with a zone; returned in UTC with a 'Z' suffix.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
    parse_literal=_parse_datetime_literal,
)


def _serialize_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Long cannot represent {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise TypeError(f"Long cannot represent the non-integer {value!r}")
    return int(value)


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Long expects an integer, got {value!r}")
    return value


def _parse_long_literal(node: ValueNode, _variables: Any = None) -> int:
    if not isinstance(node, IntValueNode):
        raise TypeError("Long expects an integer literal")
    return int(node.value)


LONG = GraphQLScalarType(
    "Long",
    description="A signed 64-bit integer (Int64 attributes).",
    serialize=_serialize_long,
    parse_value=_parse_long,
    parse_literal=_parse_long_literal,
)


def _identity(value: Any) -> Any:
    return value


def _parse_json_literal(node: ValueNode, variables: Any = None) -> Any:
    return value_from_ast_untyped(node, variables)


JSON = GraphQLScalarType(
    "JSON",
    description="Any JSON value (filter comparison values: a string, number, boolean or list).",
    serialize=_identity,
    parse_value=_identity,
    parse_literal=_parse_json_literal,
)

GEO_POINT = GraphQLObjectType(
    "GeoPoint",
    {
        "type": GraphQLField(GraphQLNonNull(GraphQLString)),
        "coordinates": GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLFloat))),
            description="[longitude, latitude]",
        ),
    },
    description="A GeoJSON point.",
)
GEO_POINT_INPUT = GraphQLInputObjectType(
    "GeoPointInput",
    {
        "type": GraphQLInputField(GraphQLString, default_value="Point"),
        "coordinates": GraphQLInputField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLFloat))),
            description="[longitude, latitude]",
        ),
    },
    description="A GeoJSON point.",
)

PAGE_INFO = GraphQLObjectType(
    "PageInfo",
    {
        "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "endCursor": GraphQLField(
            GraphQLString, description="Pass as `after` to get the next page."
        ),
    },
)

OPERATOR_ENUM = GraphQLEnumType(
    "FieldFilterOperator", {op.value: GraphQLEnumValue(op.value) for op in Operator}
)
FIELD_FILTER_INPUT = GraphQLInputObjectType(
    "FieldFilterInput",
    {
        "attributePath": GraphQLInputField(
            GraphQLNonNull(GraphQLString),
            description="e.g. `state`, a record path `phaseL1.voltage`, across associations "
            "`parent->name`",
        ),
        "operator": GraphQLInputField(GraphQLNonNull(OPERATOR_ENUM)),
        "comparisonValue": GraphQLInputField(
            JSON, description="A value; a list for IN, NOT_IN and BETWEEN; none for IS_NULL."
        ),
    },
)
SEARCH_FILTER_INPUT = GraphQLInputObjectType(
    "SearchFilterInput",
    {
        "searchTerm": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "attributePaths": GraphQLInputField(
            GraphQLList(GraphQLNonNull(GraphQLString)),
            description="String attributes to search in (default: every String attribute).",
        ),
    },
)
SORT_ORDER_ENUM = GraphQLEnumType(
    "SortOrder", {"ASCENDING": GraphQLEnumValue(False), "DESCENDING": GraphQLEnumValue(True)}
)
SORT_ORDER_INPUT = GraphQLInputObjectType(
    "SortOrderInput",
    {
        "attributePath": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "sortOrder": GraphQLInputField(SORT_ORDER_ENUM, default_value=False),
    },
)
RT_ENTITY_ID_INPUT = GraphQLInputObjectType(
    "RtEntityIdInput",
    {
        "rtId": GraphQLInputField(GraphQLNonNull(GraphQLID)),
        "ckTypeId": GraphQLInputField(
            GraphQLString, description="When given, the entity must be of this type."
        ),
    },
)
MOD_OPTION_ENUM = GraphQLEnumType(
    "AssociationModOption",
    {"CREATE": GraphQLEnumValue("CREATE"), "DELETE": GraphQLEnumValue("DELETE")},
)
DELETE_OPTION_ENUM = GraphQLEnumType(
    "DeleteOption",
    {
        "ARCHIVE": GraphQLEnumValue(
            "ARCHIVE", description="Soft delete: hidden from queries, kept in the store."
        ),
        "ERASE": GraphQLEnumValue("ERASE", description="Remove the entity and its links."),
    },
)
UPDATE_TYPE_ENUM = GraphQLEnumType(
    "UpdateType",
    {name: GraphQLEnumValue(name) for name in ("INSERT", "UPDATE", "DELETE")},
)
AGGREGATE_FUNCTION_ENUM = GraphQLEnumType(
    "AggregateFunction",
    {
        name.upper(): GraphQLEnumValue(name)
        for name in ("avg", "min", "max", "sum", "count", "first", "last")
    },
)


def list_args() -> dict[str, GraphQLArgument]:
    """Arguments of every entity list (typed queries, runtimeEntities, association fields)."""
    return {
        "first": GraphQLArgument(GraphQLInt, description="Page size (default 100)."),
        "after": GraphQLArgument(GraphQLString, description="`endCursor` of the previous page."),
        "rtId": GraphQLArgument(GraphQLID),
        "rtIds": GraphQLArgument(GraphQLList(GraphQLNonNull(GraphQLID))),
        "fieldFilter": GraphQLArgument(GraphQLList(GraphQLNonNull(FIELD_FILTER_INPUT))),
        "searchFilter": GraphQLArgument(SEARCH_FILTER_INPUT),
        "sortOrder": GraphQLArgument(GraphQLList(GraphQLNonNull(SORT_ORDER_INPUT))),
    }
