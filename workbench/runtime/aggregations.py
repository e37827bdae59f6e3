"""User-facing entity aggregations: attribute paths in, statistics computed by the store out.

Paths are the ones filters take (``activePower``, ``phaseL1.voltage``, ``parent->name``); they are
resolved on the queried type, checked against what each function needs (``avg``/``sum`` numbers,
``min``/``max`` values with an order, group keys single values) and handed to
:meth:`EntityStore.aggregate` as a :class:`~workbench.query.aggregation.EntityAggregation` over
the same query :meth:`EntityService.find` would run. Nothing here loads entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from workbench.ck.model import CkModel, TypeAttribute, ValueType
from workbench.errors import ErrorCollector, ValidationError
from workbench.query.aggregation import (
    MEASURE_FUNCTIONS,
    AggregatePath,
    AggregateRow,
    EntityAggregation,
    Measure,
    MeasureFunction,
)
from workbench.query.model import EntityQuery
from workbench.runtime.filters import WhereClause, resolve_attribute_path
from workbench.storage.base import EntityStore

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "AggregationGroup",
    "AggregationSpec",
    "EntityAggregationResult",
    "aggregate_entities",
    "aggregation_frame",
]

_NUMERIC = frozenset({ValueType.INT, ValueType.INT64, ValueType.DOUBLE})
_ORDERED = _NUMERIC | {
    ValueType.STRING,
    ValueType.BOOLEAN,
    ValueType.DATETIME,
    ValueType.DATETIME_OFFSET,
    ValueType.ENUM,
}
_COUNTABLE = _ORDERED | {
    ValueType.TIMESPAN,
    ValueType.RECORD,
    ValueType.STRING_ARRAY,
    ValueType.INT_ARRAY,
    ValueType.BINARY,
    ValueType.BINARY_LINKED,
    ValueType.GEOSPATIAL_POINT,
}
_NEEDS = {
    "avg": (_NUMERIC, "a number (Int, Int64, Double)"),
    "sum": (_NUMERIC, "a number (Int, Int64, Double)"),
    "min": (_ORDERED, "a single ordered value (number, string, date-time, enum, boolean)"),
    "max": (_ORDERED, "a single ordered value (number, string, date-time, enum, boolean)"),
    "count": (_COUNTABLE, "an attribute"),
    "group": (_ORDERED, "a single value (number, string, date-time, enum, boolean)"),
}


@dataclass(frozen=True)
class AggregationSpec:
    """What to compute, as attribute paths per function (the OctoMesh ``aggregations`` shape)."""

    avg: Sequence[str] = ()
    count: Sequence[str] = ()
    min: Sequence[str] = ()
    max: Sequence[str] = ()
    sum: Sequence[str] = ()
    group_by: Sequence[str] = ()
    resolve_enum_values_to_names: bool = False

    def measures(self) -> list[tuple[MeasureFunction, str]]:
        lists = {"avg": self.avg, "count": self.count, "min": self.min, "max": self.max}
        lists["sum"] = self.sum
        return [(f, path) for f in MEASURE_FUNCTIONS for path in lists[f]]


@dataclass
class AggregationGroup:
    """One group (or the whole set): key values aligned with the group paths, the number of
    entities, and per function the ``(attribute path, value)`` statistics. ``row`` is the
    store's row (its ``cursor`` pages on after this group)."""

    keys: list[Any]
    count: int
    statistics: dict[str, list[tuple[str, Any]]]
    row: AggregateRow | None = None

    @property
    def cursor(self) -> str | None:
        return None if self.row is None else self.row.cursor


@dataclass
class EntityAggregationResult:
    group_by: list[str]
    groups: list[AggregationGroup]
    has_next_page: bool = False
    end_cursor: str | None = None
    measures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Resolved:
    target: AggregatePath
    attribute: TypeAttribute


def _resolve(model: CkModel, type_id: str, path: str, need: str) -> _Resolved:
    hops, storage_path, attribute, through_array = resolve_attribute_path(model, type_id, path)
    if through_array:
        raise ValidationError(
            f"'{path}' goes through a RecordArray, which holds several values per entity; "
            "aggregate a Record field or a plain attribute"
        )
    allowed, what = _NEEDS[need]
    if attribute.value_type not in allowed:
        verb = "group by" if need == "group" else need
        raise ValidationError(
            f"cannot {verb} '{path}': it is a {attribute.value_type}, and {verb} needs {what}"
        )
    return _Resolved(AggregatePath(storage_path, tuple(hops)), attribute)


def build_aggregation(
    model: CkModel,
    type_id: str,
    spec: AggregationSpec,
) -> tuple[list[_Resolved], list[tuple[MeasureFunction, str, _Resolved]]]:
    """The resolved group keys and measures of ``spec`` (every problem in one ValidationError)."""
    errors = ErrorCollector()
    keys: list[_Resolved] = []
    for index, path in enumerate(spec.group_by):
        try:
            keys.append(_resolve(model, type_id, path, "group"))
        except ValidationError as exc:
            errors.add(exc.message, f"groupByAttributePaths[{index}]", path)
    measures: list[tuple[MeasureFunction, str, _Resolved]] = []
    for function, path in spec.measures():
        try:
            measures.append((function, path, _resolve(model, type_id, path, function)))
        except ValidationError as exc:
            errors.add(exc.message, f"{function}AttributePaths", path)
    errors.raise_if_any(ValidationError, f"invalid aggregation on {type_id}")
    return keys, measures


def _converter(model: CkModel, attribute: TypeAttribute, enum_names: bool) -> Any:
    """A function turning a stored value of ``attribute`` into its exchange form (or None:
    stored as exchanged)."""
    if attribute.value_type is ValueType.BOOLEAN:
        return lambda v: None if v is None else bool(v)
    if attribute.value_type is ValueType.ENUM and enum_names:
        enum = model.enums.get(attribute.attribute.enum_id or "")
        if enum is not None:
            names = {v.key: v.name for v in enum.values}
            return lambda v: names.get(v, v)
    return None


class _Service(Protocol):
    """What an aggregation needs of :class:`~workbench.runtime.service.EntityService` (a
    protocol, so this module does not import the service that imports it)."""

    @property
    def store(self) -> EntityStore: ...

    def build_query(
        self,
        ck_type_id: str,
        *,
        where: Iterable[WhereClause] = ...,
        search: str | None = ...,
        search_paths: Sequence[str] = ...,
        first: int | None = ...,
        rt_ids: Sequence[str] | None = ...,
        include_archived: bool = ...,
    ) -> EntityQuery: ...


def aggregate_entities(
    service: _Service,
    model: CkModel,
    ck_type_id: str,
    spec: AggregationSpec,
    *,
    where: Iterable[WhereClause] = (),
    search: str | None = None,
    search_paths: Sequence[str] = ("name",),
    rt_ids: Sequence[str] | None = None,
    include_archived: bool = False,
    first: int | None = None,
    after: str | None = None,
    create_index: bool = False,
) -> EntityAggregationResult:
    """Statistics over the entities ``service.find`` would return for the same arguments
    (subtypes included); with ``spec.group_by`` one group per distinct key tuple, paged by
    ``first``/``after``. ``create_index`` first creates the store's index for this aggregation
    (:meth:`EntityStore.create_aggregate_index`; for aggregations that run often)."""
    query = service.build_query(
        ck_type_id,
        where=where,
        search=search,
        search_paths=search_paths,
        first=None,
        rt_ids=rt_ids,
        include_archived=include_archived,
    )
    keys, measures = build_aggregation(model, ck_type_id, spec)
    aggregation = EntityAggregation(
        query,
        tuple(Measure(f, r.target, path) for f, path, r in measures),
        tuple(k.target for k in keys),
        first=first if keys else None,
        after=after if keys else None,
    )
    if create_index:
        service.store.create_aggregate_index(aggregation)
    result = service.store.aggregate(aggregation)
    enum_names = spec.resolve_enum_values_to_names
    key_converters = [_converter(model, k.attribute, enum_names) for k in keys]
    value_converters = [
        None if f in ("count", "avg") else _converter(model, r.attribute, enum_names)
        for f, _, r in measures
    ]
    groups = []
    for row in result.rows:
        statistics: dict[str, list[tuple[str, Any]]] = {f: [] for f in MEASURE_FUNCTIONS}
        for (function, path, _), convert, value in zip(
            measures, value_converters, row.values, strict=True
        ):
            statistics[function].append((path, value if convert is None else convert(value)))
        group_keys = [
            v if convert is None else convert(v)
            for convert, v in zip(key_converters, row.keys, strict=True)
        ]
        groups.append(AggregationGroup(group_keys, row.count, statistics, row))
    return EntityAggregationResult(
        group_by=list(spec.group_by),
        groups=groups,
        has_next_page=result.has_next_page,
        end_cursor=result.end_cursor,
        measures=[(f, path) for f, path, _ in measures],
    )


def aggregation_frame(result: EntityAggregationResult) -> pd.DataFrame:
    """One row per group: the group paths, ``count``, then ``<path>_<function>`` columns."""
    import pandas as pd

    records: list[Mapping[str, Any]] = []
    for group in result.groups:
        record: dict[str, Any] = dict(zip(result.group_by, group.keys, strict=True))
        record["count"] = group.count
        for function, pairs in group.statistics.items():
            for path, value in pairs:
                record[f"{path}_{function}"] = value
        records.append(record)
    columns = [*result.group_by, "count", *(f"{p}_{f}" for f, p in result.measures)]
    return pd.DataFrame.from_records(records, columns=columns)
