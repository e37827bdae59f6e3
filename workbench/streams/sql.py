"""Read-only SQL over a tenant's stream data: checked, rewritten, limited.

Users write SQL against one view per CK type that has stream data, named by the type id
(``"Demo.Energy/EnergyMeter"``, quoted) or by its short name (``demo_energy__energymeter``), with
the API's column names (``rtId``, ``timeStamp``, ``voltage``, ...). A statement is run only when
the parser (``sqlglot``) shows that it is

- exactly one query (``SELECT``, ``WITH``, set operations): no DDL, DML, ``COPY``, ``ATTACH``,
  ``INSTALL``, ``LOAD``, ``SET``, ``PRAGMA``;
- reading only those views (and its own CTEs): no other table, no schema- or catalog-qualified
  name, no table function (``read_csv``, ``glob``, ...), no function that reaches files,
  settings, other databases or extensions.

Each view reference is then replaced by a subquery over the tenant's own physical table, so the
statement sent to the engine names nothing else. This seals user SQL without switching off the
engine's external access (in DuckDB that setting belongs to the database instance the store
itself writes through). Limits per statement: a timeout (the statement is interrupted), a maximum
number of rows and of result bytes (:class:`SqlLimits`). Engines: :mod:`workbench.storage`'s
DuckDB store (embedded) and CrateDB store, with :func:`run_stream_sql` choosing by store.
"""

from __future__ import annotations

import pyarrow as pa

from workbench.errors import WorkbenchError
from workbench.storage.base import StreamStore
from workbench.streams.sql_compiler import (
    SqlLimits,
    SqlRefused,
    StreamView,
    compile_stream_sql,
    stream_views,
)

__all__ = [
    "SqlLimits",
    "SqlRefused",
    "StreamView",
    "compile_stream_sql",
    "run_stream_sql",
    "stream_views",
]


def run_stream_sql(store: StreamStore, sql: str, limits: SqlLimits | None = None) -> pa.Table:
    """Run ``sql`` (read-only, see the module docstring) on ``store``; the result as Arrow."""
    limits = limits or SqlLimits()
    views = stream_views(store.tables())
    from workbench.storage.duckdb import DuckDBStreamStore

    if isinstance(store, DuckDBStreamStore):
        from workbench.storage.duckdb_sql import run_duckdb_sql

        return run_duckdb_sql(store, compile_stream_sql(sql, views), limits)
    from workbench.storage.crate import CrateStreamStore

    if isinstance(store, CrateStreamStore):
        from workbench.storage.crate_sql import run_crate_sql

        return run_crate_sql(store, sql, views, limits)
    raise WorkbenchError(
        f"the stream store {store.url} has no SQL interface; SQL runs on DuckDB and CrateDB"
    )
