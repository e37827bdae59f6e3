"""The SQL shared by the SQL stream stores (DuckDB, CrateDB), and the hooks for what each
database writes differently.

Both keep a table per stream with ``"rtId"`` and ``"timestamp"`` key columns and a metadata table
``wb_stream_meta`` (``namespace``, ``key``, JSON ``document``), bind values as ``?`` parameters
and page by keyset on ``("timestamp", "rtId")``. :class:`StreamSqlDialect` builds the statements
they share (range filters, pages, aggregates, metadata); an adapter subclasses it and states its
differences: column types, how a timestamp is bound, the ``rtId`` filter, the first/last
functions and the time-bucket query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from workbench.storage.arrow import decode_stream_cursor, to_micros
from workbench.storage.base import (
    AggregateFunction,
    StreamAggregation,
    StreamColumn,
    StreamQuery,
)

__all__ = [
    "StreamSqlDialect",
    "after_cursor_condition",
    "page_select",
    "quote_identifier",
    "unique_columns",
]


def quote_identifier(identifier: str) -> str:
    """``identifier`` as a double-quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


_q = quote_identifier


def after_cursor_condition(descending: bool) -> str:
    """The condition for the points after a page cursor in the read order; it binds the cursor's
    timestamp three times, then its ``rtId``."""
    op, bound = ("<", "<=") if descending else (">", ">=")
    return f'"timestamp" {bound} ? AND ("timestamp" {op} ? OR ("timestamp" = ? AND "rtId" {op} ?))'


def page_select(
    source: str, columns: Sequence[StreamColumn], where: str, query: StreamQuery
) -> str:
    """The query for one page of ``query`` from ``source`` filtered by ``where``: the key columns
    and ``columns``, in the read order, one row more than the page size (to tell a next page)."""
    direction = "DESC" if query.descending else "ASC"
    selected = ", ".join(['"rtId"', '"timestamp"', *(quote_identifier(c.name) for c in columns)])
    sql = (
        f"SELECT {selected} FROM {source}{where} "
        f'ORDER BY "timestamp" {direction}, "rtId" {direction}'
    )
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit) + 1}"
    return sql


def unique_columns(columns: Sequence[StreamColumn]) -> list[StreamColumn]:
    """``columns`` with one column per name, compared without case (the last one wins)."""
    return list({c.name.lower(): c for c in columns}.values())


class StreamSqlDialect:
    """Builds the statements of a SQL stream store. Subclasses set :attr:`column_types`,
    :attr:`first_function` and :attr:`last_function` and implement :meth:`timestamp_value`,
    :meth:`rt_ids_condition` and :meth:`bucket_select`."""

    #: the SQL type of each logical column type
    column_types: ClassVar[Mapping[str, str]]
    #: ``f(column, "timestamp")``: the column's value at the earliest timestamp
    first_function: ClassVar[str]
    #: ``f(column, "timestamp")``: the column's value at the latest timestamp
    last_function: ClassVar[str]

    # -- the differences ---------------------------------------------------------------------

    def timestamp_value(self, micros: int) -> Any:
        """The parameter bound for a ``"timestamp"`` of ``micros`` microseconds since the epoch."""
        raise NotImplementedError

    def rt_ids_condition(self, rt_ids: list[str]) -> tuple[str, list[Any]]:
        """The condition keeping the rows of ``rt_ids`` (distinct, maybe empty) and its
        parameters."""
        raise NotImplementedError

    def bucket_select(self, source: str, size: int, expressions: str, where: str) -> str:
        """The query grouping the rows of ``source`` (filtered by ``where``) by ``rtId`` and
        buckets of ``size`` microseconds, selecting ``"rtId"``, ``bucket`` and ``expressions``,
        ordered by both."""
        raise NotImplementedError

    def aggregate_expression(self, column: StreamColumn, function: AggregateFunction) -> str:
        """``function`` of ``column`` as a select expression named ``<column>_<function>``."""
        c = _q(column.name)
        alias = _q(f"{column.name}_{function}")
        if function in ("first", "last"):
            pick = self.first_function if function == "first" else self.last_function
            return f'{pick}({c}, "timestamp") FILTER (WHERE {c} IS NOT NULL) AS {alias}'
        return f"{function}({c}) AS {alias}"

    # -- the statements ----------------------------------------------------------------------

    def column_definitions(self, columns: Sequence[StreamColumn]) -> str:
        """The value column definitions of a ``CREATE TABLE``, each after a ``", "``."""
        return "".join(f", {_q(c.name)} {self.column_types[c.type]}" for c in columns)

    def add_column(self, source: str, column: StreamColumn) -> str:
        """The statement adding ``column`` to ``source``."""
        return f"ALTER TABLE {source} ADD COLUMN {_q(column.name)} {self.column_types[column.type]}"

    def range_filter(
        self, start: datetime | None, end: datetime | None, rt_ids: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (empty when there is nothing to filter) keeping the rows in
        ``[start, end)`` of ``rt_ids``, and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if start is not None:
            clauses.append('"timestamp" >= ?')
            params.append(self.timestamp_value(to_micros(start)))
        if end is not None:
            clauses.append('"timestamp" < ?')
            params.append(self.timestamp_value(to_micros(end)))
        if rt_ids is not None:
            clause, ids = self.rt_ids_condition(list(dict.fromkeys(rt_ids)))
            clauses.append(clause)
            params.extend(ids)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def delete_points(
        self,
        source: str,
        start: datetime | None,
        end: datetime | None,
        rt_ids: Sequence[str] | None,
    ) -> tuple[str, list[Any]]:
        """The statement deleting the rows of ``source`` in ``[start, end)`` of ``rt_ids``."""
        where, params = self.range_filter(start, end, rt_ids)
        return f"DELETE FROM {source}{where}", params

    def page_query(
        self, source: str, columns: Sequence[StreamColumn], query: StreamQuery
    ) -> tuple[str, list[Any]]:
        """The query for one page of ``query`` from ``source`` (see :func:`page_select`) and its
        parameters; the rows make a page with ``SqlStreamStore``."""
        where, params = self.range_filter(query.start, query.end, query.rt_ids)
        if query.after is not None:
            micros, rt_id = decode_stream_cursor(query.after, query.descending)
            at = self.timestamp_value(micros)
            where += (" AND " if where else " WHERE ") + after_cursor_condition(query.descending)
            params += [at, at, at, rt_id]
        return page_select(source, columns, where, query), params

    def aggregate_query(
        self,
        source: str,
        outputs: Sequence[tuple[StreamColumn, AggregateFunction]],
        aggregation: StreamAggregation,
    ) -> tuple[str, list[Any]]:
        """The query computing ``outputs`` (from ``plan_aggregation``) per ``rtId`` and bucket of
        ``aggregation`` from ``source``, and its parameters."""
        where, params = self.range_filter(aggregation.start, aggregation.end, aggregation.rt_ids)
        expressions = ", ".join(self.aggregate_expression(c, f) for c, f in outputs)
        return self.bucket_select(source, int(aggregation.interval_us), expressions, where), params

    # -- metadata (the table of namespaced JSON documents) -----------------------------------

    @staticmethod
    def meta_create(table: str) -> str:
        """The statement creating the metadata ``table`` when it does not exist."""
        return (
            f"CREATE TABLE IF NOT EXISTS {table} ("
            '"namespace" TEXT, "key" TEXT, "document" TEXT NOT NULL, '
            'PRIMARY KEY ("namespace", "key"))'
        )

    @staticmethod
    def meta_get(table: str) -> str:
        """The query for one document; binds namespace and key ."""
        return f'SELECT "document" FROM {table} WHERE "namespace" = ? AND "key" = ?'

    @staticmethod
    def meta_list(table: str) -> str:
        """The query for a namespace's documents by key; binds the namespace."""
        return f'SELECT "key", "document" FROM {table} WHERE "namespace" = ? ORDER BY "key"'

    @staticmethod
    def meta_delete(table: str) -> str:
        """The statement deleting one document; binds namespace and key."""
        return f'DELETE FROM {table} WHERE "namespace" = ? AND "key" = ?'

    @staticmethod
    def meta_put(
        table: str, namespace: str, key: str, document: dict[str, Any]
    ) -> tuple[str, list[Any]]:
        """The statement storing ``document`` under ``namespace``/``key`` and its parameters."""
        sql = (
            f'INSERT INTO {table} ("namespace", "key", "document") VALUES (?, ?, ?) '
            'ON CONFLICT ("namespace", "key") DO UPDATE SET "document" = excluded."document"'
        )
        return sql, [namespace, key, json.dumps(document, default=str)]
