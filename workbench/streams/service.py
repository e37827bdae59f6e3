"""The stream data service: CK-aware writes, reads, aggregates and retention over a StreamStore.

``StreamService.for_type("Demo.Energy/EnergyMeter")`` gives a :class:`TypeStreams`. Points of one
CK type live in one stream table named by the type id; its columns are the type's scalar
attributes (named as on the type), created when first written. Attributes a later library
version adds get columns when first written; columns of attributes that disappeared stay and
remain readable. Results name columns GraphQL-style (``voltage``, aggregates ``voltageAvg``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from workbench.ck.model import SCALAR_VALUE_TYPES, CkModel, CkType
from workbench.errors import ErrorCollector, NotFound, ValidationError
from workbench.storage.arrow import from_micros, to_micros
from workbench.storage.base import (
    AGGREGATE_FUNCTIONS,
    STREAM_ARROW_TYPES,
    AggregateFunction,
    StreamAggregation,
    StreamQuery,
    StreamStore,
    StreamTable,
)
from workbench.streams.intervals import format_interval, nice_interval, parse_interval
from workbench.streams.points import normalize_points, output_name, stream_column_type
from workbench.streams.retention import apply_retention, get_policy, list_policies, set_policy

__all__ = ["StreamResult", "StreamService", "TypeStreams"]

TimeLike = datetime | str | pd.Timestamp


@dataclass
class StreamResult:
    """Points or aggregates as an Arrow table, with paging information for raw reads."""

    table: pa.Table
    has_next_page: bool = False
    end_cursor: str | None = None
    #: the bucket size of an aggregate or downsample (``15m``)
    interval: str | None = None

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.table.to_pandas()
        return frame

    def rows(self) -> list[dict[str, Any]]:
        return list(self.table.to_pylist())

    def __len__(self) -> int:
        return int(self.table.num_rows)


class StreamService:
    """Stream data of one tenant.

    ``model`` returns the tenant's current resolved model; ``entity_types(rt_ids)`` returns
    rtId → ckTypeId for the existing, non-archived entities among ``rt_ids``.
    """

    def __init__(
        self,
        model: Callable[[], CkModel],
        entity_types: Callable[[Sequence[str]], dict[str, str]],
        store: StreamStore,
    ) -> None:
        self._model = model
        self._entity_types = entity_types
        self.store = store

    def for_type(self, ck_type_id: str) -> TypeStreams:
        """The stream data of ``ck_type_id`` (NotFound for an unknown type)."""
        self._model().type(ck_type_id)
        return TypeStreams(self, ck_type_id)

    def retention_policies(self) -> dict[str, str]:
        """``keep`` durations by type id."""
        return {p.ck_type_id: p.keep for p in list_policies(self.store)}

    def apply_retention(self, now: datetime | None = None) -> dict[str, int]:
        """Delete points older than each type's policy; deleted counts by type id."""
        return apply_retention(self.store, now)


class TypeStreams:
    """Write, read, aggregate, downsample and delete the stream data of one CK type."""

    def __init__(self, service: StreamService, ck_type_id: str) -> None:
        self._service = service
        self.ck_type_id = ck_type_id

    def __repr__(self) -> str:
        return f"<TypeStreams {self.ck_type_id}>"

    @property
    def _store(self) -> StreamStore:
        return self._service.store

    def _type(self) -> tuple[CkModel, CkType]:
        model = self._service._model()
        return model, model.type(self.ck_type_id)

    # -- writing -----------------------------------------------------------------------------

    def write(self, data: Any, *, timezone: str | None = None) -> int:
        """Validate ``data`` as a whole and upsert it; returns the number of points written.

        ``data``: list of dicts, pandas DataFrame (wide ``rtId,timestamp,<attr>...`` or long
        ``rtId,timestamp,attribute,value``) or pyarrow Table. Naive timestamps need
        ``timezone``. Rewriting a point overwrites the attributes given (last write wins)."""
        model, ck_type = self._type()
        if ck_type.is_abstract:
            concrete = ", ".join(
                t for t in model.descendants(ck_type.id) if not model.types[t].is_abstract
            )
            raise ValidationError(
                f"{ck_type.id} is abstract and has no instances, so it has no stream data; "
                f"write to a concrete type ({concrete or 'none defined'})"
            )
        points = normalize_points(model, ck_type, data, timezone=timezone)
        if points.table.num_rows == 0:
            return 0
        self._check_entities(model, ck_type, points.table)
        if points.columns or self._store.table(self.ck_type_id) is None:
            self._store.ensure_table(self.ck_type_id, points.columns)
        return self._store.append(self.ck_type_id, points.table)

    def _check_entities(self, model: CkModel, ck_type: CkType, table: pa.Table) -> None:
        rt_ids = table.column("rtId")
        unique = [str(v) for v in pa.compute.unique(rt_ids).to_pylist()]
        found = self._service._entity_types(unique)
        problems = [
            r for r in unique if found.get(r) is None or not model.is_a(found[r], ck_type.id)
        ]
        if not problems:
            return
        errors = ErrorCollector()
        for rt_id in problems[:20]:
            row = int(pa.compute.index(rt_ids, rt_id).as_py())
            if rt_id not in found:
                message = f"no entity {rt_id} exists in this tenant (or it is archived)"
            else:
                message = f"entity {rt_id} is a {found[rt_id]}, not a {ck_type.id} or subtype"
            errors.add(message, f"row {row}", "rtId")
        errors.raise_if_any(
            ValidationError,
            f"{len(problems)} rtId(s) of the stream points for {ck_type.id} are not usable; "
            "nothing was written",
        )

    # -- reading -----------------------------------------------------------------------------

    def read(
        self,
        from_: TimeLike | None = None,
        to: TimeLike | None = None,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        descending: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> StreamResult:
        """Points with ``from_ <= timestamp < to`` ordered by (timestamp, rtId); ``first`` is the
        page size and ``after`` the ``end_cursor`` of the previous page (keyset paging)."""
        table = self._store.table(self.ck_type_id)
        columns, missing = self._columns(table, attributes)
        page = self._store.read(
            self.ck_type_id,
            StreamQuery(
                start=_time(from_, "from"),
                end=_time(to, "to"),
                rt_ids=None if rt_ids is None else tuple(rt_ids),
                columns=tuple(columns) if table is not None else None,
                descending=descending,
                limit=first,
                after=after,
            ),
        )
        result = page.table
        for name, kind in missing:
            result = result.append_column(
                pa.field(name, STREAM_ARROW_TYPES[kind]),
                pa.nulls(result.num_rows, STREAM_ARROW_TYPES[kind]),
            )
        result = result.rename_columns([output_name(c) for c in result.column_names])
        return StreamResult(result, page.has_next_page, page.end_cursor)

    def _columns(
        self, table: StreamTable | None, attributes: Sequence[str] | None
    ) -> tuple[list[str], list[tuple[str, Any]]]:
        """Stored columns to read and (name, type) of asked attributes not stored yet."""
        _, ck_type = self._type()
        stored = {c.name.lower(): c.name for c in (table.columns if table else ())}
        if attributes is None:
            return list(stored.values()), []
        columns: list[str] = []
        missing: list[tuple[str, Any]] = []
        for name in attributes:
            if name.lower() in stored:
                columns.append(stored[name.lower()])
                continue
            try:
                attribute = ck_type.attribute(name)
            except NotFound as exc:
                raise ValidationError(exc.message) from None
            if attribute.value_type not in SCALAR_VALUE_TYPES:
                raise ValidationError(
                    f"attribute {attribute.name!r} of {ck_type.id} is a {attribute.value_type}; "
                    "only scalar attributes carry stream values"
                )
            if attribute.name.lower() in stored:
                columns.append(stored[attribute.name.lower()])
            else:
                missing.append((attribute.name, stream_column_type(attribute.value_type)))
        return columns, missing

    def aggregate(
        self,
        from_: TimeLike,
        to: TimeLike,
        interval: str | int,
        functions: Sequence[str] = ("avg",),
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
    ) -> StreamResult:
        """Per rtId and epoch-aligned bucket of ``interval`` (``15m``): columns ``rtId``,
        ``bucket`` and ``<attribute><Function>`` (``voltageAvg``) for each function of
        ``AVG, MIN, MAX, SUM, COUNT, FIRST, LAST`` (any case)."""
        interval_us = interval if isinstance(interval, int) else parse_interval(interval)
        chosen = _functions(functions)
        result = self._aggregate(
            from_, to, interval_us, chosen, rt_ids=rt_ids, attributes=attributes
        )
        names = []
        for name in result.column_names:
            if name in ("rtId", "bucket"):
                names.append(name)
            else:
                column, _, function = name.rpartition("_")
                names.append(output_name(column) + function.capitalize())
        return StreamResult(result.rename_columns(names), interval=format_interval(interval_us))

    def downsample(
        self,
        from_: TimeLike,
        to: TimeLike,
        limit: int,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        function: str = "avg",
    ) -> StreamResult:
        """At most ``limit`` buckets per rtId: the smallest nice interval (1s, 2s, 5s, ..., 15m,
        ...) that fits, one value per attribute (``function`` of the bucket, default avg).
        ``result.interval`` tells the interval chosen."""
        start, end = _required_time(from_, "from"), _required_time(to, "to")
        interval_us = nice_interval(to_micros(start), to_micros(end), limit)
        chosen = _functions([function])
        result = self._aggregate(
            start, end, interval_us, chosen, rt_ids=rt_ids, attributes=attributes
        )
        names = [
            n if n in ("rtId", "bucket") else output_name(n.rpartition("_")[0])
            for n in result.column_names
        ]
        return StreamResult(result.rename_columns(names), interval=format_interval(interval_us))

    def _aggregate(
        self,
        from_: TimeLike,
        to: TimeLike,
        interval_us: int,
        functions: tuple[AggregateFunction, ...],
        *,
        rt_ids: Sequence[str] | None,
        attributes: Sequence[str] | None,
    ) -> pa.Table:
        table = self._store.table(self.ck_type_id)
        columns, _ = self._columns(table, attributes)
        return self._store.aggregate(
            self.ck_type_id,
            StreamAggregation(
                start=_required_time(from_, "from"),
                end=_required_time(to, "to"),
                interval_us=interval_us,
                functions=functions,
                rt_ids=None if rt_ids is None else tuple(rt_ids),
                columns=tuple(columns) if attributes is not None else None,
            ),
        )

    # -- deleting and retention --------------------------------------------------------------

    def delete(
        self,
        from_: TimeLike | None = None,
        to: TimeLike | None = None,
        rt_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete the points with ``from_ <= timestamp < to`` (all when both are None)."""
        return self._store.delete(self.ck_type_id, _time(from_, "from"), _time(to, "to"), rt_ids)

    def set_retention(self, keep: str | None) -> str | None:
        """Keep points for ``keep`` (``90d``); None removes the policy. Applied by
        :meth:`StreamService.apply_retention`."""
        policy = set_policy(self._store, self.ck_type_id, keep)
        return None if policy is None else policy.keep

    def retention(self) -> str | None:
        policy = get_policy(self._store, self.ck_type_id)
        return None if policy is None else policy.keep

    def columns(self) -> list[str]:
        """Names (as in results) of the stored columns of this type."""
        table = self._store.table(self.ck_type_id)
        return [output_name(c.name) for c in (table.columns if table else ())]


def _functions(functions: Sequence[str]) -> tuple[AggregateFunction, ...]:
    chosen: list[AggregateFunction] = []
    for function in functions:
        lowered = str(function).lower()
        match = next((f for f in AGGREGATE_FUNCTIONS if f == lowered), None)
        if match is None:
            raise ValidationError(
                f"unknown aggregate function {function!r}; use AVG, MIN, MAX, SUM, COUNT, FIRST "
                "or LAST"
            )
        if match not in chosen:
            chosen.append(match)
    if not chosen:
        raise ValidationError("name at least one aggregate function (AVG, MIN, MAX, ...)")
    return tuple(chosen)


def _time(value: TimeLike | None, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"'{what}' {value!r} is not an ISO 8601 timestamp (e.g. 2026-01-01T00:00:00Z)"
            ) from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"'{what}' {value.isoformat()} has no time zone; give a UTC offset (…Z or +01:00)"
        )
    return from_micros(to_micros(value.astimezone(UTC)))


def _required_time(value: TimeLike | None, what: str) -> datetime:
    found = _time(value, what)
    if found is None:
        raise ValidationError(f"'{what}' is required for aggregates and downsampling")
    return found
