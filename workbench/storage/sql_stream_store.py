"""The base of the SQL stream stores (DuckDB, CrateDB): appends, reads, aggregates, deletes and
metadata, written once over a :class:`~workbench.storage.stream_sql.StreamSqlDialect`.

A subclass sets :attr:`SqlStreamStore.dialect`, implements the tables and lifecycle of the port
(where the databases really differ) and five hooks: where a table's rows are
(:meth:`~SqlStreamStore._source`), running a query for rows (``_rows``) or for an Arrow table
(``_arrow``), running a statement that changes data (``_change``) and writing checked points
by the upsert rule (``_upsert``).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import pyarrow as pa

from workbench.errors import NotFound
from workbench.storage.arrow import (
    empty_points,
    encode_stream_cursor,
    plan_aggregation,
    points_to_upsert,
    read_columns,
    stream_schema,
    trim_page,
)
from workbench.storage.base import (
    StreamAggregation,
    StreamPage,
    StreamQuery,
    StreamStore,
    StreamTable,
)
from workbench.storage.stream_sql import StreamSqlDialect

__all__ = ["SqlStreamStore"]


class SqlStreamStore(StreamStore):
    """A stream store on a SQL database; see the module docstring for what to override."""

    #: the statements of this database
    dialect: ClassVar[StreamSqlDialect]
    #: the metadata table as written in statements (see ``StreamSqlDialect.meta_create``)
    _meta_table: str

    # -- hooks -------------------------------------------------------------------------------

    @abstractmethod
    def _source(self, table: StreamTable) -> str:
        """The stream table's physical table as written in statements."""

    @abstractmethod
    def _rows(self, sql: str, params: list[Any], what: str) -> Sequence[Sequence[Any]]:
        """The rows of the query ``sql``; errors name ``what`` was being done."""

    @abstractmethod
    def _arrow(self, sql: str, params: list[Any], schema: pa.Schema, what: str) -> pa.Table:
        """The result of the query ``sql`` as a table of ``schema`` (its columns in order)."""

    @abstractmethod
    def _upsert(self, table: StreamTable, points: pa.Table) -> None:
        """Write ``points`` (checked, without duplicate keys: ``points_to_upsert``) to ``table``
        by the port's upsert rule."""

    @abstractmethod
    def _change(self, sql: str, params: list[Any], what: str, changed: str) -> int:
        """Run the statement ``sql``, which changes the table ``changed`` (as written in
        statements) so that a read after it sees it; how many rows it changed (0 when unknown)."""

    # -- the port ----------------------------------------------------------------------------

    def append(self, name: str, data: pa.Table) -> int:
        table = self.table(name)
        if table is None:
            raise NotFound(f"stream table {name} does not exist; call ensure_table first")
        points = points_to_upsert(table, data)
        if points.num_rows == 0:
            return 0
        self._upsert(table, points)
        return int(data.num_rows)

    def read(self, name: str, query: StreamQuery) -> StreamPage:
        table = self.table(name)
        columns, readable = read_columns(table, query)
        if table is None or not readable:
            return StreamPage(empty_points(columns), False, None)
        sql, params = self.dialect.page_query(self._source(table), columns, query)
        result = self._arrow(
            sql, params, stream_schema(columns), f"reading stream points of {name}"
        )
        return _page_of(result, query)

    def aggregate(self, name: str, aggregation: StreamAggregation) -> pa.Table:
        table = self.table(name)
        outputs, schema = plan_aggregation(table, aggregation)
        if table is None or not outputs:
            return schema.empty_table()
        sql, params = self.dialect.aggregate_query(self._source(table), outputs, aggregation)
        return self._arrow(sql, params, schema, f"aggregating stream points of {name}")

    def delete(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        rt_ids: Sequence[str] | None = None,
    ) -> int:
        table = self.table(name)
        if table is None:
            return 0
        source = self._source(table)
        sql, params = self.dialect.delete_points(source, start, end, rt_ids)
        return self._change(sql, params, f"deleting stream points of {name}", source)

    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None:
        sql = self.dialect.meta_get(self._meta_table)
        return _meta_document(self._rows(sql, [namespace, key], "reading stream store metadata"))

    def put_meta(self, namespace: str, key: str, document: dict[str, Any] | None) -> None:
        if document is None:
            sql, params = self.dialect.meta_delete(self._meta_table), [namespace, key]
        else:
            sql, params = self.dialect.meta_put(self._meta_table, namespace, key, document)
        self._change(sql, params, "writing stream store metadata", self._meta_table)

    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        sql = self.dialect.meta_list(self._meta_table)
        return _meta_documents(self._rows(sql, [namespace], "reading stream store metadata"))


def _page_of(result: pa.Table, query: StreamQuery) -> StreamPage:
    """The page of ``query`` from ``result`` (the rows of :meth:`StreamSqlDialect.page_query`, in
    the stream schema): the extra row dropped, the cursor after the last row kept."""
    result, has_next = trim_page(result, query.limit)
    end_cursor = None
    if result.num_rows:
        last = result.num_rows - 1
        micros = result.column("timestamp").cast(pa.int64())[last].as_py()
        end_cursor = encode_stream_cursor(
            query.descending, micros, result.column("rtId")[last].as_py()
        )
    return StreamPage(result, has_next, end_cursor)


def _meta_document(rows: Sequence[Sequence[Any]]) -> dict[str, Any] | None:
    """The document of the one row :meth:`StreamSqlDialect.meta_get` found (None for none)."""
    return dict(json.loads(rows[0][0])) if rows else None


def _meta_documents(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """The documents by key of the rows :meth:`StreamSqlDialect.meta_list` found."""
    return {str(key): dict(json.loads(document)) for key, document in rows}
