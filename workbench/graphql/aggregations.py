"""The ``aggregations`` argument of entity lists and the statistics on their connections.

The shape is OctoMesh's, so clients' queries carry over::

    runtime { rtDemoEnergyMeter(fieldFilter: [...], aggregations: {
        sumAttributePaths: ["voltage"],
        groupBy: {groupByAttributePaths: ["state", "parent->name"], countAttributePaths: ["name"],
                  resolveEnumValuesToNames: true, first: 50}}) {
      aggregation { count sumStatistics { attributePath value } }
      fieldAggregations { groupByAttributePaths keys count countStatistics { attributePath value } }
      fieldAggregationsPageInfo { hasNextPage endCursor }
    } }

``aggregation`` covers every entity the list's filters select; ``fieldAggregations`` one group per
distinct key tuple, paged by ``groupBy.first``/``groupBy.after``. Both are computed by the store
(:mod:`workbench.runtime.aggregations`), and only when selected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from workbench.errors import ValidationError
from workbench.graphql.context import GraphQLContext
from workbench.graphql.scalars import JSON, PAGE_INFO, format_datetime
from workbench.runtime.aggregations import (
    AggregationGroup,
    AggregationSpec,
    EntityAggregationResult,
    aggregate_entities,
)
from workbench.runtime.filters import FieldFilter

__all__ = [
    "AGGREGATION_FIELDS",
    "AGGREGATION_TYPE_NAMES",
    "aggregation_args",
    "aggregation_fields",
    "resolve_aggregations",
]

#: GraphQL keys of the path lists, by function
_PATH_LISTS = {
    "avg": "avgAttributePaths",
    "count": "countAttributePaths",
    "min": "minValueAttributePaths",
    "max": "maxValueAttributePaths",
    "sum": "sumAttributePaths",
}
#: result fields, by function
_STATISTICS = {
    "avg": "avgStatistics",
    "count": "countStatistics",
    "min": "minValueStatistics",
    "max": "maxValueStatistics",
    "sum": "sumStatistics",
}
#: largest group page
MAX_GROUPS = 10_000

_PATHS = GraphQLList(GraphQLNonNull(GraphQLString))


def _path_inputs() -> dict[str, GraphQLInputField]:
    return {
        name: GraphQLInputField(_PATHS, description=f"Attribute paths to {function} over.")
        for function, name in _PATH_LISTS.items()
    }


GROUP_BY_INPUT = GraphQLInputObjectType(
    "GroupByInput",
    lambda: {
        "groupByAttributePaths": GraphQLInputField(
            GraphQLNonNull(_PATHS),
            description="Paths whose value tuples form the groups (attributes, record fields, "
            "association paths such as `parent->name`).",
        ),
        **_path_inputs(),
        "resolveEnumValuesToNames": GraphQLInputField(
            GraphQLBoolean, description="Give enum keys as names (default false)."
        ),
        "first": GraphQLInputField(GraphQLInt, description="Groups per page (default 100)."),
        "after": GraphQLInputField(
            GraphQLString, description="`endCursor` of the previous page of groups."
        ),
    },
)
AGGREGATION_INPUT = GraphQLInputObjectType(
    "AggregationInput",
    lambda: {**_path_inputs(), "groupBy": GraphQLInputField(GROUP_BY_INPUT)},
)
ATTRIBUTE_STATISTIC = GraphQLObjectType(
    "AttributeStatistic",
    {
        "attributePath": GraphQLField(GraphQLNonNull(GraphQLString)),
        "value": GraphQLField(JSON, description="null when no entity has a value."),
    },
)


def _statistic_fields() -> dict[str, GraphQLField]:
    return {
        name: GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(ATTRIBUTE_STATISTIC))))
        for name in _STATISTICS.values()
    }


ENTITY_AGGREGATION = GraphQLObjectType(
    "EntityAggregation",
    lambda: {
        "count": GraphQLField(GraphQLNonNull(GraphQLInt), description="Matching entities."),
        **_statistic_fields(),
    },
)
FIELD_AGGREGATION = GraphQLObjectType(
    "FieldAggregation",
    lambda: {
        "groupByAttributePaths": GraphQLField(GraphQLNonNull(_PATHS)),
        "keys": GraphQLField(
            GraphQLNonNull(GraphQLList(JSON)), description="Values of the group paths, in order."
        ),
        "count": GraphQLField(GraphQLNonNull(GraphQLInt), description="Entities in the group."),
        "cursor": GraphQLField(GraphQLNonNull(GraphQLString)),
        **_statistic_fields(),
    },
)

#: names of the static types above (claimed so that no CK type takes them)
AGGREGATION_TYPE_NAMES = (
    "GroupByInput",
    "AggregationInput",
    "AttributeStatistic",
    "EntityAggregation",
    "FieldAggregation",
)
#: connection fields these resolvers fill
AGGREGATION_FIELDS = frozenset({"aggregation", "fieldAggregations", "fieldAggregationsPageInfo"})


def aggregation_args() -> dict[str, GraphQLArgument]:
    return {
        "aggregations": GraphQLArgument(
            AGGREGATION_INPUT,
            description="Statistics over the selected entities (see `aggregation` and "
            "`fieldAggregations` on the result).",
        )
    }


def aggregation_fields() -> dict[str, GraphQLField]:
    """The fields every entity connection gets (null unless ``aggregations`` is given)."""
    return {
        "aggregation": GraphQLField(
            ENTITY_AGGREGATION, description="Statistics over every matching entity."
        ),
        "fieldAggregations": GraphQLField(
            GraphQLList(GraphQLNonNull(FIELD_AGGREGATION)),
            description="One entry per group of `aggregations.groupBy` (one page).",
        ),
        "fieldAggregationsPageInfo": GraphQLField(PAGE_INFO),
    }


def _spec(raw: Mapping[str, Any], group_by: list[str], enum_names: bool) -> AggregationSpec:
    lists = {f: list(raw.get(name) or ()) for f, name in _PATH_LISTS.items()}
    return AggregationSpec(
        avg=lists["avg"],
        count=lists["count"],
        min=lists["min"],
        max=lists["max"],
        sum=lists["sum"],
        group_by=group_by,
        resolve_enum_values_to_names=enum_names,
    )


def _json(value: Any) -> Any:
    return format_datetime(value) if isinstance(value, datetime) else value


def _statistics(group: AggregationGroup) -> dict[str, Any]:
    return {
        _STATISTICS[function]: [{"attributePath": p, "value": _json(v)} for p, v in pairs]
        for function, pairs in group.statistics.items()
    }


def resolve_aggregations(
    context: GraphQLContext,
    ck_type_id: str,
    args: Mapping[str, Any],
    names: set[str],
    where: list[FieldFilter],
    rt_ids: list[str] | None,
) -> dict[str, Any]:
    """The aggregation fields of a connection selected in ``names`` (empty without the
    ``aggregations`` argument)."""
    raw = args.get("aggregations")
    if not raw or not (names & AGGREGATION_FIELDS):
        return {}
    search = args.get("searchFilter")
    common: dict[str, Any] = {
        "where": where,
        "search": search["searchTerm"] if search else None,
        "search_paths": list(search.get("attributePaths") or ()) if search else (),
        "rt_ids": rt_ids,
    }
    service, model = context.entities, context.tenant.model
    out: dict[str, Any] = {}
    if "aggregation" in names:
        whole = aggregate_entities(
            service, model, ck_type_id, _spec(raw, [], False), **common
        ).groups[0]
        out["aggregation"] = {"count": whole.count, **_statistics(whole)}
    group_by = raw.get("groupBy")
    if group_by and names & {"fieldAggregations", "fieldAggregationsPageInfo"}:
        first = group_by.get("first")
        first = 100 if first is None else first
        if first < 0 or first > MAX_GROUPS:
            raise ValidationError(
                f"groupBy.first={first} is out of range; ask for 0 to {MAX_GROUPS} groups and "
                "page on with groupBy.after"
            )
        paths = list(group_by["groupByAttributePaths"])
        if not paths:
            raise ValidationError(
                "groupBy.groupByAttributePaths is empty; name at least one path to group by"
            )
        result: EntityAggregationResult = aggregate_entities(
            service,
            model,
            ck_type_id,
            _spec(group_by, paths, bool(group_by.get("resolveEnumValuesToNames"))),
            first=first,
            after=group_by.get("after"),
            **common,
        )
        out["fieldAggregations"] = [
            {
                "groupByAttributePaths": paths,
                "keys": [_json(k) for k in group.keys],
                "count": group.count,
                "cursor": group.cursor,
                **_statistics(group),
            }
            for group in result.groups
        ]
        out["fieldAggregationsPageInfo"] = {
            "hasNextPage": result.has_next_page,
            "endCursor": result.end_cursor,
        }
    return out
