"""The SQL shared by the SQL stream stores (DuckDB, CrateDB): quoting and the page query.

Both keep a table per stream with ``"rtId"`` and ``"timestamp"`` key columns, bind values as
``?`` parameters and page by keyset on ``("timestamp", "rtId")``.
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.storage.base import StreamColumn, StreamQuery

__all__ = ["after_cursor_condition", "page_select", "quote_identifier"]


def quote_identifier(identifier: str) -> str:
    """``identifier`` as a double-quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


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
