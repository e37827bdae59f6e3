"""Storage ports: the contracts every backend adapter implements.

An adapter is a class registered by URL scheme in :mod:`workbench.storage.backends`. It must pass
the contract suite for its port in :mod:`workbench.testing` unchanged. Adapters translate driver
exceptions into :mod:`workbench.errors` at their boundary.

The entity store keeps, per tenant, the runtime entities, their associations and a small "meta"
area of JSON documents by ``(namespace, key)`` (imported CK libraries, migration history, the
tenant registry in the system tenant). It knows nothing about the CK model beyond the index specs
it is given: validation belongs to :mod:`workbench.runtime`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

import pyarrow as pa

from workbench.errors import ValidationError
from workbench.query.aggregation import AggregationResult, EntityAggregation
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


@dataclass(frozen=True)
class StreamColumn:
    """A value column of a stream table: its name (compared case-insensitively) and type."""

    name: str
    type: StreamColumnType


@dataclass(frozen=True)
class StreamTable:
    """A stream table as the store knows it.

    ``name`` is the logical name the caller chose (a CK type id); ``physical_name`` the engine's
    table name derived from it (see :func:`~workbench.storage.arrow.physical_table_name`);
    ``columns`` the value columns in creation order (``rtId`` and ``timestamp`` are implied).
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
