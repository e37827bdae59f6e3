"""Storage ports: the contracts every backend adapter implements.

An adapter is a class registered by URL scheme in :mod:`workbench.storage.registry`. It must pass
the contract suite for its port in :mod:`workbench.testing` unchanged. Adapters translate driver
exceptions into :mod:`workbench.errors` at their boundary.

The entity store keeps, per tenant, the runtime entities, their associations and a small "meta"
area of JSON documents by ``(namespace, key)`` (imported CK libraries, migration history, the
tenant registry in the system tenant). It knows nothing about the CK model beyond the index specs
it is given: validation belongs to :mod:`workbench.runtime`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import Conflict, ValidationError
from workbench.query.aggregation import AggregationResult, EntityAggregation
from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.query.model import EntityQuery, Page, Path

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "STREAM_ARROW_TYPES",
    "STREAM_KEY_COLUMNS",
    "AggregateFunction",
    "EntityStore",
    "IndexSpec",
    "MetaWrite",
    "StoredAssociation",
    "StoredEntity",
    "StreamAggregation",
    "StreamColumn",
    "StreamColumnType",
    "StreamPage",
    "StreamQuery",
    "StreamStore",
    "StreamTable",
    "WriteBatch",
    "physical_table_name",
]


@dataclass
class StoredEntity:
    """An entity as stored: system fields plus ``attributes`` keyed by attribute name.

    Attribute values are plain JSON-like values (str, int, float, bool, None, list, dict) and
    timezone-aware ``datetime``; records are nested dicts keyed by their attribute names.
    ``archived`` entities are hidden from queries unless asked for.
    """

    rt_id: str
    ck_type_id: str
    attributes: dict[str, Any]
    rt_version: int
    rt_creation_datetime: datetime
    rt_changed_datetime: datetime
    rt_well_known_name: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class StoredAssociation:
    """A directed link ``source --role--> target``."""

    role_id: str
    source_rt_id: str
    source_ck_type_id: str
    target_rt_id: str
    target_ck_type_id: str


@dataclass(frozen=True)
class MetaWrite:
    """Put (``document`` set) or delete (``document is None``) one meta document."""

    namespace: str
    key: str
    document: dict[str, Any] | None


@dataclass
class WriteBatch:
    """Changes applied together by :meth:`EntityStore.apply`: all of them or none.

    - ``inserts``: new entities; an existing ``rt_id`` is a :class:`~workbench.errors.Conflict`.
    - ``updates``: full replacements as ``(entity, expected_version)``; the stored entity must
      exist and, when ``expected_version`` is not None, have that ``rt_version`` (else Conflict).
      The caller sets the new ``rt_version``.
    - ``erase``: rtIds removed for good, with every association that touches them.
    - ``add_associations`` / ``remove_associations``: links; adding an existing link is a no-op.
    - ``meta``: meta documents put or deleted.
    Unique indexes and ``rtWellKnownName`` uniqueness (among non-archived entities) are checked
    against the state after the whole batch; a violation is a Conflict naming the value.
    """

    inserts: list[StoredEntity] = field(default_factory=list)
    updates: list[tuple[StoredEntity, int | None]] = field(default_factory=list)
    erase: list[str] = field(default_factory=list)
    add_associations: list[StoredAssociation] = field(default_factory=list)
    remove_associations: list[StoredAssociation] = field(default_factory=list)
    meta: list[MetaWrite] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.inserts
            or self.updates
            or self.erase
            or self.add_associations
            or self.remove_associations
            or self.meta
        )


@dataclass(frozen=True)
class IndexSpec:
    """An index derived from the CK model.

    ``type_ids`` are the types it covers (the declaring type and its subtypes); ``paths`` are
    storage paths (``("attributes", "SerialNumber")``). ``kind`` ``unique`` rejects duplicates
    among all entities of those types, ``unique_not_deleted`` among non-archived ones only;
    ``text`` supports text search; ``ascending`` is a plain index. ``name`` is stable and unique.
    """

    name: str
    kind: Literal["ascending", "text", "unique", "unique_not_deleted"]
    type_ids: tuple[str, ...]
    paths: tuple[Path, ...]


class EntityStore(ABC):
    """Port for a tenant's entity database (SQLite embedded, MongoDB in production)."""

    #: the URL the store was opened with (credentials removed)
    url: str

    @abstractmethod
    def supports_transactions(self) -> bool:
        """True when :meth:`apply` runs in a server transaction; False when the adapter validates
        the whole batch first and undoes a partial write on failure (best effort under crashes)."""

    def supports_element_match(self) -> bool:
        """True when a condition through an array (``ANY_ELEMENT``) with BETWEEN is checked
        against one and the same element; False when the server cannot (then such a query is a
        ValidationError that says so)."""
        return True

    @abstractmethod
    def apply(self, batch: WriteBatch) -> None:
        """Apply every change of ``batch`` atomically (see :class:`WriteBatch`)."""

    @abstractmethod
    def get_many(
        self, rt_ids: Sequence[str], include_archived: bool = True
    ) -> dict[str, StoredEntity]:
        """The entities with these ids that exist, by rtId (one round trip)."""

    def entity_types(self, rt_ids: Sequence[str], include_archived: bool = True) -> dict[str, str]:
        """rtId → ckTypeId of the stored entities among ``rt_ids`` (one round trip). Adapters
        override this with a query that does not load the attribute documents."""
        return {k: e.ck_type_id for k, e in self.get_many(rt_ids, include_archived).items()}

    @abstractmethod
    def get_by_well_known_name(self, name: str) -> StoredEntity | None:
        """The non-archived entity whose ``rtWellKnownName`` is ``name``."""

    @abstractmethod
    def find(self, query: EntityQuery) -> Page[StoredEntity]:
        """One page of entities matching ``query`` (keyset paging, see :class:`EntityQuery`)."""

    @abstractmethod
    def count(self, query: EntityQuery) -> int:
        """The number of entities matching ``query`` (ignores paging)."""

    @abstractmethod
    def aggregate(self, aggregation: EntityAggregation) -> AggregationResult:
        """Statistics over the entities ``aggregation.query`` selects, computed in the store
        (see :mod:`workbench.query.aggregation` for the semantics every adapter keeps)."""

    def supports_aggregate_indexes(self) -> bool:
        """True when :meth:`create_aggregate_index` can make an aggregation faster."""
        return False

    def create_aggregate_index(self, aggregation: EntityAggregation) -> str:
        """Create an index that serves ``aggregation`` (see :meth:`supports_aggregate_indexes`);
        returns its name."""
        raise ValidationError(
            f"the entity store {self.url} has no aggregate indexes; aggregations run without one"
        )

    def supports_association_measures(self) -> bool:
        """True when measures (not only group keys) may take paths across associations; False
        when the server cannot join (then such a request is a ValidationError saying so)."""
        return True

    @abstractmethod
    def associations(
        self,
        rt_ids: Sequence[str],
        direction: Literal["outbound", "inbound"],
        role_id: str | None = None,
    ) -> list[StoredAssociation]:
        """Links whose source (``outbound``) or target (``inbound``) is in ``rt_ids``, in one
        round trip, optionally of one role only."""

    @abstractmethod
    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        """Create the given indexes and drop model indexes no longer listed (idempotent).

        Raises Conflict when existing data violates a new unique index (nothing is changed)."""

    @abstractmethod
    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every document of ``namespace`` by key."""

    @abstractmethod
    def drop(self) -> None:
        """Delete every piece of data of this store (the tenant's database) and close it."""

    @abstractmethod
    def close(self) -> None: ...

    def put_meta(self, namespace: str, key: str, document: dict[str, Any] | None) -> None:
        """Put (or with ``None`` delete) one meta document."""
        self.apply(WriteBatch(meta=[MetaWrite(namespace, key, document)]))

    def __enter__(self) -> EntityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Stream store: time series per "table" (one per CK type), engine-level, knows nothing of CK.
# --------------------------------------------------------------------------------------------

#: Logical column types of stream tables; adapters map them to their engine's types.
StreamColumnType = Literal["double", "bigint", "boolean", "varchar", "timestamp"]

#: The Arrow type every logical column type is exchanged as (reads return exactly these).
STREAM_ARROW_TYPES: dict[str, pa.DataType] = {
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "varchar": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

#: The key columns every stream table has, in this order, before its value columns.
STREAM_KEY_COLUMNS = ("rtId", "timestamp")

AggregateFunction = Literal["avg", "min", "max", "sum", "count", "first", "last"]

#: Aggregate functions in their canonical order.
AGGREGATE_FUNCTIONS: tuple[AggregateFunction, ...] = get_args(AggregateFunction)

_NUMERIC_ONLY = frozenset({"avg", "sum"})


@dataclass(frozen=True)
class StreamColumn:
    """A value column of a stream table: its name (compared case-insensitively) and type."""

    name: str
    type: StreamColumnType


@dataclass(frozen=True)
class StreamTable:
    """A stream table as the store knows it.

    ``name`` is the logical name the caller chose (a CK type id); ``physical_name`` the engine's
    table name derived from it (see :func:`physical_table_name`); ``columns`` the value columns in
    creation order (``rtId`` and ``timestamp`` are implied).
    """

    name: str
    physical_name: str
    columns: tuple[StreamColumn, ...]

    def column(self, name: str) -> StreamColumn | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)


@dataclass(frozen=True)
class StreamQuery:
    """A read of raw points from one table.

    Rows with ``start <= timestamp < end`` (either bound may be None), of ``rt_ids`` (None: all),
    ordered by ``(timestamp, rtId)`` ascending or, with ``descending``, both descending.
    ``columns`` selects value columns (None: all). ``limit`` is the page size (None: every row);
    ``after`` is the ``end_cursor`` of the previous page of the *same* direction: paging is keyset
    paging, so a deep page costs what the first one costs and concurrent writes never shift pages.
    """

    start: datetime | None = None
    end: datetime | None = None
    rt_ids: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    descending: bool = False
    limit: int | None = None
    after: str | None = None


@dataclass(frozen=True)
class StreamAggregation:
    """Aggregates per rtId and time bucket.

    Buckets are ``interval_us`` microseconds long and aligned to the Unix epoch (a bucket of 15
    minutes starts at :00, :15, ...; a day at 00:00 UTC). For each of ``columns`` (None: all) and
    each function the result has a column ``<column>_<function>``: ``avg``/``sum`` on numeric
    columns only; ``count`` counts non-null values; ``first``/``last`` are the non-null values
    with the smallest/largest timestamp in the bucket. Nulls are ignored by every function.
    Only buckets holding at least one row of the rtId are returned, ordered by rtId, bucket.
    """

    start: datetime
    end: datetime
    interval_us: int
    functions: tuple[AggregateFunction, ...]
    rt_ids: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None


@dataclass
class StreamPage:
    """One page of points: an Arrow table (``rtId``, ``timestamp``, value columns) and paging."""

    table: pa.Table
    has_next_page: bool
    end_cursor: str | None


class StreamStore(ABC):
    """Port for a tenant's time-series database (DuckDB embedded, CrateDB in production).

    A store holds *tables*, one per CK type, each with the key ``(rtId, timestamp)`` (timestamps in
    UTC with microsecond precision) and value columns of the logical types in
    :data:`STREAM_ARROW_TYPES`. Tables are created on first write and grow new columns; a column
    is never dropped or retyped. Data goes in and out as Arrow tables. A small JSON metadata area
    (``get_meta``/``put_meta``) keeps settings such as retention policies next to the data.

    **Upsert rule (last write wins):** :meth:`append` treats each row as an upsert of the point
    ``(rtId, timestamp)``. For a point that already exists, every column the row gives a non-null
    value for overwrites the stored value; columns missing from the batch, or null in the row,
    keep their stored value (writing cannot set a value back to null: delete the point and write
    it again). Rows of one batch with the same key are merged in batch order (for each column the
    last non-null value wins), exactly as if they had been appended one after another.

    Adapters must be safe for concurrent use by threads of the owning process, and pass
    :class:`workbench.testing.stream_store_contract.StreamStoreContract` unchanged.
    """

    #: the URL the store was opened with (credentials removed)
    url: str

    @abstractmethod
    def ensure_table(self, name: str, columns: Sequence[StreamColumn]) -> StreamTable:
        """Create the table ``name`` or add the ``columns`` it lacks (idempotent).

        Raises Conflict when a column exists with another type (columns are never retyped)."""

    @abstractmethod
    def table(self, name: str) -> StreamTable | None:
        """The table ``name`` with its columns, or None when nothing was written to it yet."""

    @abstractmethod
    def tables(self) -> list[StreamTable]:
        """Every table of the store, by logical name."""

    @abstractmethod
    def append(self, name: str, data: pa.Table) -> int:
        """Upsert the rows of ``data`` (see the class docstring); returns the number of rows given.

        ``data`` has ``rtId`` (string) and ``timestamp`` (timezone-aware or UTC timestamp) without
        nulls and any subset of the table's value columns (castable to their types). Unknown
        columns are a ValidationError and nothing is written."""

    @abstractmethod
    def read(self, name: str, query: StreamQuery) -> StreamPage:
        """One page of points (see :class:`StreamQuery`); an unknown table reads as empty."""

    @abstractmethod
    def aggregate(self, name: str, aggregation: StreamAggregation) -> pa.Table:
        """Columns ``rtId``, ``bucket`` and ``<column>_<function>`` (see StreamAggregation)."""

    @abstractmethod
    def delete(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        rt_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete the points with ``start <= timestamp < end`` (of ``rt_ids`` when given);
        returns how many were deleted."""

    @abstractmethod
    def drop_table(self, name: str) -> None:
        """Delete the table ``name`` and its data (no-op when absent)."""

    @abstractmethod
    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def put_meta(self, namespace: str, key: str, document: dict[str, Any] | None) -> None:
        """Put (or with ``None`` delete) one JSON metadata document."""

    @abstractmethod
    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def drop(self) -> None:
        """Delete every piece of data of this store (the tenant's stream database) and close it."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
