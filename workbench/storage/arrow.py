"""Helpers the stream-store adapters share: logical and physical table and column names,
aggregation plans, Arrow point tables (schema, conversion, duplicate keys), page cursors and
microsecond timestamps.

The port itself (:class:`~workbench.storage.base.StreamStore`) is in :mod:`workbench.storage.base`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import Conflict, ValidationError
from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.storage.base import (
    AGGREGATE_FUNCTIONS,
    STREAM_ARROW_TYPES,
    STREAM_KEY_COLUMNS,
    AggregateFunction,
    StreamAggregation,
    StreamColumn,
    StreamQuery,
    StreamTable,
)

__all__ = [
    "aggregate_output_functions",
    "aggregate_result_type",
    "check_aggregation",
    "check_column_name",
    "check_new_columns",
    "decode_stream_cursor",
    "empty_points",
    "encode_stream_cursor",
    "free_physical_name",
    "from_micros",
    "has_duplicate_keys",
    "merge_duplicate_keys",
    "missing_columns",
    "physical_table_name",
    "plan_aggregation",
    "points_to_upsert",
    "prepare_points",
    "read_columns",
    "select_columns",
    "stream_schema",
    "to_micros",
    "trim_page",
]

_NUMERIC_ONLY = frozenset({"avg", "sum"})


def physical_table_name(name: str) -> str:
    """An engine-safe table name for the logical ``name``:
    ``Demo.Energy/EnergyMeter`` -> ``ts_demo_energy__energymeter``.

    Lower case ASCII letters, digits and ``_`` only (safe unquoted in DuckDB and CrateDB); the
    ``ts_`` prefix keeps stream tables apart from the store's own ``wb_`` tables. Adapters keep a
    mapping table and add a numeric suffix when two names collide."""
    library, _, element = name.rpartition("/")
    parts = [library, element] if library else [element]
    cleaned = [
        "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in p.lower()) for p in parts
    ]
    return "ts_" + "__".join(cleaned)


def check_column_name(name: str) -> str:
    """``name`` when it can be a stream value column, else a ValidationError saying why."""
    if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValidationError(
            f"stream column name {name!r} is not usable: use letters, digits and '_', "
            "starting with a letter"
        )
    if name.lower() in {k.lower() for k in STREAM_KEY_COLUMNS} | {"bucket"}:
        raise ValidationError(
            f"stream column name {name!r} clashes with a key column (rtId, timestamp, bucket); "
            "rename the attribute"
        )
    return name


def check_new_columns(columns: Sequence[StreamColumn], types: Collection[str]) -> None:
    """Check the names of ``columns`` and that their types are among ``types`` (an adapter's)."""
    for column in columns:
        check_column_name(column.name)
        if column.type not in types:
            raise ValidationError(f"unknown stream column type {column.type!r}")


def free_physical_name(name: str, taken: Collection[str]) -> str:
    """:func:`physical_table_name` of ``name``, with a ``_<n>`` suffix when that is ``taken``."""
    base = physical_table_name(name)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def missing_columns(table: StreamTable, columns: Sequence[StreamColumn]) -> list[StreamColumn]:
    """The ``columns`` that ``table`` lacks (the first of each case-insensitive name); a column it
    has with another type is a Conflict (columns are never retyped)."""
    missing: list[StreamColumn] = []
    for column in columns:
        found = table.column(column.name)
        if found is None:
            if all(c.name.lower() != column.name.lower() for c in missing):
                missing.append(column)
        elif found.type != column.type:
            raise Conflict(
                f"stream table {table.name} already has column {found.name!r} as {found.type}; "
                f"it cannot become {column.type} (columns are never retyped: give the "
                "attribute a new name)"
            )
    return missing


def check_aggregation(
    table: StreamTable | None, aggregation: StreamAggregation
) -> list[StreamColumn]:
    """The value columns an aggregation covers, after checking functions, interval and range."""
    if aggregation.interval_us <= 0:
        raise ValidationError(
            f"aggregation interval must be positive, got {aggregation.interval_us} µs"
        )
    if not aggregation.functions:
        raise ValidationError(
            f"name at least one aggregate function ({', '.join(AGGREGATE_FUNCTIONS)})"
        )
    for function in aggregation.functions:
        if function not in AGGREGATE_FUNCTIONS:
            known = ", ".join(AGGREGATE_FUNCTIONS)
            raise ValidationError(f"unknown aggregate function {function!r}; use one of {known}")
    columns = select_columns(table, aggregation.columns)
    for column in columns:
        if column.type not in ("double", "bigint"):
            bad = sorted(set(aggregation.functions) & _NUMERIC_ONLY)
            if bad and aggregation.columns is not None:
                raise ValidationError(
                    f"{'/'.join(bad)} need a numeric column; {column.name!r} is {column.type}"
                )
    return columns


def aggregate_output_functions(
    column: StreamColumn, functions: Sequence[AggregateFunction]
) -> list[AggregateFunction]:
    """The functions that apply to ``column`` (``avg``/``sum`` are skipped on non-numeric ones
    when all columns were asked for)."""
    numeric = column.type in ("double", "bigint")
    return [f for f in functions if numeric or f not in _NUMERIC_ONLY]


def aggregate_result_type(column: StreamColumn, function: AggregateFunction) -> pa.DataType:
    if function == "avg":
        return pa.float64()
    if function == "count":
        return pa.int64()
    return STREAM_ARROW_TYPES[column.type]


def plan_aggregation(
    table: StreamTable | None, aggregation: StreamAggregation
) -> tuple[list[tuple[StreamColumn, AggregateFunction]], pa.Schema]:
    """The checked ``(column, function)`` outputs of an aggregation and its result schema; the
    outputs are empty when there is nothing to aggregate (no table, no applicable function, an
    empty ``rt_ids``), and the result is then ``schema.empty_table()``."""
    columns = check_aggregation(table, aggregation)
    outputs = [
        (c, f) for c in columns for f in aggregate_output_functions(c, aggregation.functions)
    ]
    schema = pa.schema(
        [
            pa.field("rtId", pa.string()),
            pa.field("bucket", STREAM_ARROW_TYPES["timestamp"]),
            *(pa.field(f"{c.name}_{f}", aggregate_result_type(c, f)) for c, f in outputs),
        ]
    )
    if table is None or (aggregation.rt_ids is not None and not aggregation.rt_ids):
        return [], schema
    return outputs, schema


def read_columns(table: StreamTable | None, query: StreamQuery) -> tuple[list[StreamColumn], bool]:
    """The value columns a read returns, after checking them and the page size, and whether it
    can return any point (not without a table, with a zero page size or an empty ``rt_ids``)."""
    columns = select_columns(table, query.columns)
    if query.limit is not None and query.limit < 0:
        raise ValidationError(f"page size must not be negative, got {query.limit}")
    empty = table is None or query.limit == 0 or (query.rt_ids is not None and not query.rt_ids)
    return columns, not empty


def trim_page(result: pa.Table, limit: int | None) -> tuple[pa.Table, bool]:
    """A page read with one row more than ``limit`` cut to ``limit``, and whether it had more."""
    has_next = limit is not None and result.num_rows > limit
    return (result.slice(0, limit) if has_next else result), has_next


def select_columns(table: StreamTable | None, names: Sequence[str] | None) -> list[StreamColumn]:
    """The table's columns called ``names`` (case-insensitive; None: all); unknown is an error."""
    if table is None:
        return []
    if names is None:
        return list(table.columns)
    selected = []
    for name in names:
        column = table.column(name)
        if column is None:
            known = ", ".join(c.name for c in table.columns) or "none"
            raise ValidationError(
                f"stream table {table.name} has no column {name!r}; its columns are: {known}"
            )
        selected.append(column)
    return selected


def empty_points(columns: Sequence[StreamColumn]) -> pa.Table:
    """An empty points table with the key columns and ``columns``."""
    return pa.schema(stream_schema(columns)).empty_table()


def stream_schema(columns: Sequence[StreamColumn]) -> pa.Schema:
    fields = [
        pa.field("rtId", pa.string()),
        pa.field("timestamp", STREAM_ARROW_TYPES["timestamp"]),
        *(pa.field(c.name, STREAM_ARROW_TYPES[c.type]) for c in columns),
    ]
    return pa.schema(fields)


def prepare_points(table: StreamTable, data: pa.Table) -> pa.Table:
    """``data`` checked and cast for :meth:`StreamStore.append`: keys first, then the given value
    columns under the table's spelling and types. Raises ValidationError (nothing written)."""
    names = data.column_names
    for key in STREAM_KEY_COLUMNS:
        if key not in names:
            raise ValidationError(f"stream points need a {key!r} column; got columns {names}")
    fields: list[pa.Field] = [
        pa.field("rtId", pa.string()),
        pa.field("timestamp", STREAM_ARROW_TYPES["timestamp"]),
    ]
    arrays: list[pa.ChunkedArray] = []
    for key in STREAM_KEY_COLUMNS:
        column = data.column(key)
        if column.null_count:
            raise ValidationError(f"stream points: {column.null_count} row(s) have no {key}")
    rt_ids = data.column("rtId")
    timestamps = data.column("timestamp")
    if not pa.types.is_timestamp(timestamps.type):
        raise ValidationError(
            f"stream points: 'timestamp' must be a timestamp column, got {timestamps.type}"
        )
    if timestamps.type.tz is None:
        raise ValidationError("stream points: 'timestamp' must be timezone-aware (UTC)")
    arrays.append(rt_ids.cast(pa.string()))
    arrays.append(timestamps.cast(STREAM_ARROW_TYPES["timestamp"]))
    seen: set[str] = set()
    for name in names:
        if name in STREAM_KEY_COLUMNS:
            continue
        column = table.column(name)
        if column is None:
            known = ", ".join(c.name for c in table.columns) or "none"
            raise ValidationError(
                f"stream table {table.name} has no column {name!r}; its columns are: {known} "
                "(call ensure_table first)"
            )
        if column.name.lower() in seen:
            raise ValidationError(f"stream points: column {name!r} is given twice")
        seen.add(column.name.lower())
        target = STREAM_ARROW_TYPES[column.type]
        values = data.column(name)
        try:
            arrays.append(values if values.type == target else values.cast(target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValidationError(
                f"stream points: column {name!r} ({values.type}) cannot be stored as "
                f"{column.type}: {exc}"
            ) from None
        fields.append(pa.field(column.name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def points_to_upsert(table: StreamTable, data: pa.Table) -> pa.Table:
    """``data`` as :func:`prepare_points` makes it, rows with equal keys merged as
    :func:`merge_duplicate_keys` does: the points :meth:`StreamStore.append` upserts."""
    points = prepare_points(table, data)
    return merge_duplicate_keys(points) if has_duplicate_keys(points) else points


def has_duplicate_keys(data: pa.Table) -> bool:
    """True when two rows of ``data`` share ``(rtId, timestamp)``.

    Cheap for the usual layouts (rows sorted by time within each rtId, or by time then rtId):
    those are proven duplicate-free with a few vectorised passes; anything else is grouped."""
    if data.num_rows < 2:
        return False
    rt_ids = data.column("rtId").combine_chunks()
    micros = data.column("timestamp").combine_chunks().cast(pa.int64())
    head, tail = rt_ids.slice(0, len(rt_ids) - 1), rt_ids.slice(1)
    same_id = pc.equal(tail, head).to_numpy(zero_copy_only=False)
    times = micros.to_numpy(zero_copy_only=False)
    later = times[1:] > times[:-1]
    # layout 1: timestamps non-decreasing, rtIds strictly increasing within one timestamp
    same_time = times[1:] == times[:-1]
    if bool(np.all(later | same_time)):
        rising_id = pc.greater(tail, head).to_numpy(zero_copy_only=False)
        if bool(np.all(later | rising_id)):
            return False
    # layout 2: each rtId in one contiguous run, strictly increasing timestamps inside a run
    if bool(np.all(later | ~same_id)):
        starts = np.flatnonzero(np.concatenate(([True], ~same_id)))
        run_heads = pc.take(rt_ids, pa.array(starts))
        if pc.count_distinct(run_heads).as_py() == len(starts):
            return False
    grouped = data.select(list(STREAM_KEY_COLUMNS)).group_by(list(STREAM_KEY_COLUMNS)).aggregate([])
    return bool(grouped.num_rows != data.num_rows)


def merge_duplicate_keys(data: pa.Table) -> pa.Table:
    """``data`` with rows of equal ``(rtId, timestamp)`` merged: per column, the last non-null
    value in batch order (the upsert rule applied inside one batch)."""
    values = [n for n in data.column_names if n not in STREAM_KEY_COLUMNS]
    ordered = data.append_column("__row", pa.array(np.arange(data.num_rows, dtype=np.int64)))
    merged = ordered.group_by(list(STREAM_KEY_COLUMNS), use_threads=False).aggregate(
        [("__row", "min")]
        + [(n, "last", pc.ScalarAggregateOptions(skip_nulls=True)) for n in values]
    )
    merged = merged.sort_by("__row_min")
    renamed = {f"{n}_last": n for n in values}
    return merged.select(list(STREAM_KEY_COLUMNS) + [f"{n}_last" for n in values]).rename_columns(
        list(STREAM_KEY_COLUMNS) + [renamed[f"{n}_last"] for n in values]
    )


def encode_stream_cursor(descending: bool, micros: int, rt_id: str) -> str:
    """The opaque cursor after the point ``(micros, rt_id)`` of a read in one direction."""
    return encode_cursor(["desc" if descending else "asc", micros, rt_id])


def decode_stream_cursor(cursor: str, descending: bool) -> tuple[int, str]:
    """``(micros, rtId)`` of a cursor from :func:`encode_stream_cursor` for the same direction."""
    direction, micros, rt_id = decode_cursor(cursor, 3)
    if (
        direction != ("desc" if descending else "asc")
        or not isinstance(micros, int)
        or not isinstance(rt_id, str)
    ):
        raise ValidationError(
            f"cursor {cursor!r} was issued for the other sort direction or another query; "
            "restart paging without 'after' when you change the direction"
        )
    return micros, rt_id


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (naive is a ValidationError)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"timestamp {value.isoformat()} has no time zone; pass an aware datetime (UTC)"
        )
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
