"""Persisted queries: ``System/SimpleRtQuery`` and ``System/StreamDataQuery`` entities a tenant
stores (created like any entity, or imported from a runtime file) and runs by rtId or name.

A SimpleRtQuery reads entities of ``queryCkTypeId`` (subtypes included) with the stored filters
(``queryFieldFilter``: JSON list of ``{attributePath, operator, comparisonValue}``) and sort
(``querySorting``), returning the ``queryColumns`` (attribute or record paths, system fields) as
rows; each run may override the page (``first``/``after``) and the sort, and aggregations run over
the same set. A StreamDataQuery reads the stream data of its type: raw points of ``queryColumns``
in ``[queryFrom, queryTo)`` (or the ``queryRange`` ending now), or, with ``queryAggregation``,
aggregates per ``queryInterval``; each run may override the range and the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.errors import NotFound, ValidationError
from workbench.runtime.entity import Entity
from workbench.runtime.filters import FieldFilter, parse_cli_sort

__all__ = [
    "SIMPLE_QUERY_TYPE",
    "STREAM_QUERY_TYPE",
    "QueryResult",
    "find_query",
    "query_filters",
    "run_query",
]

_RT_ID = re.compile(r"[0-9a-fA-F]{24}")
SIMPLE_QUERY_TYPE = "System/SimpleRtQuery"
STREAM_QUERY_TYPE = "System/StreamDataQuery"
DEFAULT_LIMIT = 100
_SYSTEM = ("rtId", "ckTypeId", "rtWellKnownName", "rtCreationDateTime", "rtChangedDateTime")


@dataclass
class QueryResult:
    """Rows of a persisted query (dicts keyed by column), with paging where it applies."""

    query: Entity
    columns: list[str]
    rows: list[dict[str, Any]]
    has_next_page: bool = False
    end_cursor: str | None = None
    total_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=self.columns)


def find_query(entities: Any, name_or_rt_id: str) -> Entity:
    """The persisted query with this rtId, else the one with this name or rtWellKnownName."""
    if _RT_ID.fullmatch(name_or_rt_id):
        found = entities.get_many([name_or_rt_id])
        if name_or_rt_id in found:
            entity: Entity = found[name_or_rt_id]
            if entity.ck_type_id not in (SIMPLE_QUERY_TYPE, STREAM_QUERY_TYPE):
                raise ValidationError(
                    f"{name_or_rt_id} is a {entity.ck_type_id}, not a persisted query "
                    f"({SIMPLE_QUERY_TYPE} or {STREAM_QUERY_TYPE})"
                )
            return entity
    for type_id in (SIMPLE_QUERY_TYPE, STREAM_QUERY_TYPE):
        page = entities.find(type_id, where=[("name", "EQUALS", name_or_rt_id)], first=2)
        if len(page.items) > 1:
            raise ValidationError(
                f"two {type_id} entities are named {name_or_rt_id!r}; run one by its rtId"
            )
        if page.items:
            found_entity: Entity = page.items[0]
            return found_entity
    try:
        by_name: Entity = entities.get_by_well_known_name(name_or_rt_id)
    except NotFound:
        by_name = None  # type: ignore[assignment]
    if by_name is not None and by_name.ck_type_id in (SIMPLE_QUERY_TYPE, STREAM_QUERY_TYPE):
        return by_name
    raise NotFound(
        f"no persisted query {name_or_rt_id!r}: give the rtId or name of a {SIMPLE_QUERY_TYPE} "
        f"or {STREAM_QUERY_TYPE} entity"
    )


def _json_list(entity: Entity, attribute: str) -> list[Any]:
    text = entity.attributes.get(attribute)
    if text in (None, ""):
        return []
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise ValidationError(
            f"persisted query {entity.rt_id}: {attribute} is not JSON ({text!r}); store a JSON "
            'list such as [{"attributePath": "state", "operator": "EQUALS", '
            '"comparisonValue": "Active"}]'
        ) from None
    if not isinstance(value, list):
        raise ValidationError(f"persisted query {entity.rt_id}: {attribute} must be a JSON list")
    return value


def _filters(entity: Entity) -> list[FieldFilter]:
    out = []
    for item in _json_list(entity, "queryFieldFilter"):
        if not isinstance(item, Mapping) or "attributePath" not in item or "operator" not in item:
            raise ValidationError(
                f"persisted query {entity.rt_id}: filter {item!r} needs attributePath and operator"
            )
        out.append(
            FieldFilter(item["attributePath"], item["operator"], item.get("comparisonValue"))
        )
    return out


def _sort(entity: Entity) -> list[tuple[str, bool]]:
    text = entity.attributes.get("querySorting")
    if not text:
        return []
    if str(text).lstrip().startswith("["):
        return [
            (item["attributePath"], str(item.get("sortOrder", "ASCENDING")).upper() == "DESCENDING")
            for item in _json_list(entity, "querySorting")
        ]
    return [parse_cli_sort(part) for part in str(text).split(",") if part.strip()]


def _value(entity: Entity, path: str) -> Any:
    if path in _SYSTEM:
        return getattr(entity, _SNAKE.get(path, path), None)
    value: Any = entity.attributes
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


_SNAKE = {
    "rtId": "rt_id",
    "ckTypeId": "ck_type_id",
    "rtWellKnownName": "rt_well_known_name",
    "rtCreationDateTime": "rt_creation_datetime",
    "rtChangedDateTime": "rt_changed_datetime",
}


def run_query(
    tenant: Any,
    name_or_rt_id: str,
    *,
    first: int | None = None,
    after: str | None = None,
    sort: Sequence[str | tuple[str, bool]] | None = None,
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
    limit: int | None = None,
) -> QueryResult:
    """Run a persisted query of ``tenant`` (an in-process tenant) with optional overrides."""
    query = find_query(tenant.entities, name_or_rt_id)
    columns = list(query.attributes.get("queryColumns") or [])
    type_id = query.attributes.get("queryCkTypeId")
    if not type_id:
        raise ValidationError(f"persisted query {query.rt_id} names no queryCkTypeId")
    page_size = first if first is not None else limit
    if page_size is None:
        page_size = int(query.attributes.get("queryLimit") or DEFAULT_LIMIT)
    if query.ck_type_id == STREAM_QUERY_TYPE:
        return _run_stream_query(tenant, query, type_id, columns, from_, to, page_size, after)
    page = tenant.entities.find(
        type_id,
        where=_filters(query),
        sort=list(sort) if sort is not None else _sort(query),
        first=page_size,
        after=after,
        include_total=True,
    )
    shown = columns or ["rtId", "ckTypeId", *sorted({k for e in page.items for k in e.attributes})]
    return QueryResult(
        query,
        shown,
        [{c: _value(e, c) for c in shown} for e in page.items],
        page.has_next_page,
        page.end_cursor,
        page.total_count,
    )


def query_filters(query: Entity) -> list[FieldFilter]:
    """The stored field filters of a SimpleRtQuery (for aggregations over the same set)."""
    return _filters(query)


def _run_stream_query(
    tenant: Any,
    query: Entity,
    type_id: str,
    columns: list[str],
    from_: datetime | str | None,
    to: datetime | str | None,
    limit: int,
    after: str | None,
) -> QueryResult:
    from workbench.streams.intervals import parse_interval

    start = from_ if from_ is not None else query.attributes.get("queryFrom")
    end = to if to is not None else query.attributes.get("queryTo")
    span = query.attributes.get("queryRange")
    if start is None and span:
        now = datetime.now(UTC)
        end = end or now
        end_time = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
        start = end_time - timedelta(microseconds=parse_interval(str(span)))
    streams = tenant.streams(type_id)
    functions = [f.strip() for f in str(query.attributes.get("queryAggregation") or "").split(",")]
    functions = [f for f in functions if f]
    if functions:
        interval = query.attributes.get("queryInterval") or "1h"
        if start is None or end is None:
            raise ValidationError(
                f"persisted query {query.rt_id} aggregates stream data and needs a time range: "
                "store queryFrom/queryTo or queryRange, or pass from and to"
            )
        result = streams.aggregate(start, end, interval, functions, attributes=columns or None)
        table = result.to_arrow()
        return QueryResult(
            query, table.column_names, table.to_pylist(), extra={"interval": result.interval}
        )
    result = streams.read(start, end, attributes=columns or None, first=limit, after=after)
    table = result.to_arrow()
    return QueryResult(
        query, table.column_names, table.to_pylist(), result.has_next_page, result.end_cursor
    )
