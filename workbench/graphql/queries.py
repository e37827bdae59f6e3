"""``runtime { runQuery(rtId: ...) }``: run a persisted query (:mod:`workbench.runtime.queries`)
with overrides of the page, sort, time range and limit, and aggregations over the same set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from workbench.graphql.aggregations import (
    aggregation_args,
    aggregation_fields,
    resolve_aggregations,
)
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.resolvers import selected_fields
from workbench.graphql.scalars import DATETIME, JSON, PAGE_INFO, SORT_ORDER_INPUT, format_datetime
from workbench.runtime.queries import SIMPLE_QUERY_TYPE, query_filters, run_query

__all__ = ["QUERY_TYPE_NAMES", "run_query_field"]

QUERY_TYPE_NAMES = ("PersistedQueryResult",)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


PERSISTED_QUERY_RESULT = GraphQLObjectType(
    "PersistedQueryResult",
    lambda: {
        "queryRtId": GraphQLField(GraphQLNonNull(GraphQLID)),
        "name": GraphQLField(GraphQLString),
        "queryCkTypeId": GraphQLField(GraphQLNonNull(GraphQLString)),
        "ckTypeId": GraphQLField(
            GraphQLNonNull(GraphQLString), description="The type the query reads."
        ),
        "columns": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString)))),
        "rows": GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(JSON))),
            description="One object per row, keyed by column.",
        ),
        "totalCount": GraphQLField(GraphQLInt),
        "pageInfo": GraphQLField(GraphQLNonNull(PAGE_INFO)),
        **aggregation_fields(),
    },
)


def _resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    context: GraphQLContext = info.context
    sort = args.get("sortOrder")
    result = run_query(
        context.tenant,
        args["rtId"],
        first=args.get("first"),
        after=args.get("after"),
        sort=None
        if sort is None
        else [(s["attributePath"], bool(s.get("sortOrder"))) for s in sort],
        from_=args.get("from"),
        to=args.get("to"),
        limit=args.get("limit"),
    )
    query = result.query
    out: dict[str, Any] = {
        "queryRtId": query.rt_id,
        "name": query.attributes.get("name"),
        "queryCkTypeId": query.ck_type_id,
        "ckTypeId": query.attributes.get("queryCkTypeId"),
        "columns": result.columns,
        "rows": [_jsonable(row) for row in result.rows],
        "totalCount": result.total_count,
        "pageInfo": {"hasNextPage": result.has_next_page, "endCursor": result.end_cursor},
    }
    if query.ck_type_id == SIMPLE_QUERY_TYPE and args.get("aggregations"):
        out.update(
            resolve_aggregations(
                context,
                str(query.attributes["queryCkTypeId"]),
                {"aggregations": args["aggregations"]},
                selected_fields(info),
                query_filters(query),
                None,
            )
        )
    return out


def run_query_field() -> GraphQLField:
    return GraphQLField(
        GraphQLNonNull(PERSISTED_QUERY_RESULT),
        {
            "rtId": GraphQLArgument(
                GraphQLNonNull(GraphQLString),
                description="rtId (or name) of a System/SimpleRtQuery or System/StreamDataQuery.",
            ),
            "first": GraphQLArgument(GraphQLInt, description="Page size (default: the query's)."),
            "after": GraphQLArgument(GraphQLString, description="`endCursor` of the last page."),
            "sortOrder": GraphQLArgument(
                GraphQLList(GraphQLNonNull(SORT_ORDER_INPUT)),
                description="Replaces the stored sort.",
            ),
            "from": GraphQLArgument(DATETIME, description="Stream queries: replaces the start."),
            "to": GraphQLArgument(DATETIME, description="Stream queries: replaces the end."),
            "limit": GraphQLArgument(GraphQLInt, description="Replaces the stored limit."),
            **aggregation_args(),
        },
        _resolve,
        description="Run a persisted query by rtId or name.",
    )
