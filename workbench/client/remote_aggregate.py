"""``RemoteEntityService.aggregate``: entity aggregations through the tenant's GraphQL endpoint
(``runtimeEntities(aggregations: ...)``), returned as the DataFrame the in-process client gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workbench.client.results import raise_graphql_errors
from workbench.runtime.aggregations import (
    AggregationGroup,
    EntityAggregationResult,
    aggregation_frame,
)
from workbench.runtime.query_arguments import AggregateArguments

__all__ = ["remote_aggregate"]

_FUNCTIONS = {  # in the order of workbench.query.aggregation.MEASURE_FUNCTIONS
    "count": ("countAttributePaths", "countStatistics"),
    "avg": ("avgAttributePaths", "avgStatistics"),
    "sum": ("sumAttributePaths", "sumStatistics"),
    "min": ("minValueAttributePaths", "minValueStatistics"),
    "max": ("maxValueAttributePaths", "maxValueStatistics"),
}
_STATISTICS = " ".join(f"{s} {{ attributePath value }}" for _, s in _FUNCTIONS.values())
_QUERY = (
    "query($type: String, $filter: [FieldFilterInput!], $search: SearchFilterInput, "
    "$aggregations: AggregationInput) { runtime { runtimeEntities(ckTypeId: $type, "
    "fieldFilter: $filter, searchFilter: $search, aggregations: $aggregations, first: 0) { "
    f"aggregation {{ count {_STATISTICS} }} "
    f"fieldAggregations {{ keys count {_STATISTICS} }} "
    "fieldAggregationsPageInfo { hasNextPage endCursor } } } }"
)
#: groups asked for per request when the caller wants them all
_PAGE = 10_000


def _filter(item: Any, where_item: Callable[[Any], Any]) -> dict[str, Any]:
    if isinstance(item, str):
        from workbench.runtime.filters import parse_cli_filter

        parsed = parse_cli_filter(item)
        return {
            "attributePath": parsed.attribute_path,
            "operator": str(parsed.operator),
            "comparisonValue": parsed.comparison_value,
        }
    return dict(where_item(item))


def _group(raw: Mapping[str, Any], measures: Sequence[tuple[str, str]]) -> AggregationGroup:
    statistics: dict[str, list[tuple[str, Any]]] = {f: [] for f in _FUNCTIONS}
    for function, (_, field) in _FUNCTIONS.items():
        statistics[function] = [(s["attributePath"], s["value"]) for s in raw[field]]
    return AggregationGroup(list(raw.get("keys") or []), int(raw["count"]), statistics)


def remote_aggregate(
    post: Callable[[dict[str, Any]], dict[str, Any]],
    where_item: Callable[[Any], Any],
    arguments: AggregateArguments,
) -> Any:
    """The DataFrame of :meth:`EntityService.aggregate`, computed by the server; ``post`` sends
    a GraphQL payload and returns the response body."""
    a = arguments
    lists = {"avg": a.avg, "count": a.count, "min": a.min, "max": a.max, "sum": a.sum}
    paths = {_FUNCTIONS[f][0]: list(p) for f, p in lists.items() if p}
    search = a.search
    variables: dict[str, Any] = {
        "type": a.ck_type_id,
        "filter": [_filter(w, where_item) for w in a.where],
        "search": {"searchTerm": search, "attributePaths": list(a.search_paths)}
        if search
        else None,
    }
    measures = [(f, p) for f in _FUNCTIONS for p in lists.get(f, ())]
    group_by, first = a.group_by, a.first
    result = EntityAggregationResult(group_by=list(group_by), groups=[], measures=measures)
    if not group_by:
        variables["aggregations"] = paths
        body = post({"query": _QUERY, "variables": variables})
        raise_graphql_errors(body.get("errors") or [])
        result.groups.append(
            _group(body["data"]["runtime"]["runtimeEntities"]["aggregation"], measures)
        )
        return aggregation_frame(result)
    cursor = a.after
    while True:
        size = _PAGE if first is None else first
        variables["aggregations"] = {
            "groupBy": {
                "groupByAttributePaths": list(group_by),
                "resolveEnumValuesToNames": a.resolve_enum_values_to_names,
                "first": size,
                "after": cursor,
                **paths,
            }
        }
        body = post({"query": _QUERY, "variables": variables})
        raise_graphql_errors(body.get("errors") or [])
        data = body["data"]["runtime"]["runtimeEntities"]
        result.groups.extend(_group(g, measures) for g in data["fieldAggregations"])
        info = data["fieldAggregationsPageInfo"]
        result.has_next_page, result.end_cursor = info["hasNextPage"], info["endCursor"]
        if first is not None or not info["hasNextPage"]:
            return aggregation_frame(result)
        cursor = info["endCursor"]
