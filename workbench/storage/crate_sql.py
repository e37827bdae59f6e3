"""User SQL on the CrateDB stream store (see :mod:`workbench.streams.sql`).

Before anything is sent, the statement is parsed twice: with CrateDB's own grammar
(``cratedb-sqlparse``: one statement, a SELECT, every table in the tenant's schema or
unqualified) and with the checker shared with DuckDB, which rewrites the views onto the
tenant's physical tables. On the server the statement should run as a user that may only read
the tenant's schema: :func:`reader_statements` gives the ``CREATE USER``/``GRANT DQL`` statements
for one, and a store opened with that user's URL as ``sql_reader_url`` runs user SQL through it
(``CrateStreamStore.reader_connection``); without one, the store's own connection is used and
the two checks are the only fence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from workbench.errors import ValidationError
from workbench.storage.crate import CrateStreamStore
from workbench.storage.stream_sql import quote_identifier
from workbench.streams.sql_compiler import (
    SqlLimits,
    SqlRefused,
    StreamView,
    check_result,
    compile_stream_sql,
)

__all__ = ["check_crate_grammar", "reader_statements", "run_crate_sql"]


def check_crate_grammar(sql: str, schema: str) -> None:
    """Refuse ``sql`` unless CrateDB's grammar reads it as one SELECT whose tables are
    unqualified or in ``schema``."""
    from cratedb_sqlparse import ParsingException, sqlparse

    try:
        statements = sqlparse(sql, raise_exception=True)
    except ParsingException as exc:
        raise SqlRefused(f"CrateDB cannot parse the statement: {exc}") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement, got {len(statements)}")
    statement = statements[0]
    if statement.type != "SELECT":
        raise SqlRefused(
            f"{statement.type} is not allowed: SQL over stream data runs read-only SELECTs"
        )
    for table in statement.metadata.tables:
        if table.schema is not None and table.schema != schema:
            raise SqlRefused(
                f"{table.schema}.{table.name} is in the schema {table.schema!r}, which is not "
                "this tenant's; name the stream views alone"
            )


def reader_statements(schema: str, user: str) -> list[str]:
    """Statements (run as an administrator, password bound as the one parameter of the
    first) creating ``user`` with read (DQL) privileges on ``schema`` only."""
    return [
        f"CREATE USER {quote_identifier(user)} WITH (password = ?)",
        f"GRANT DQL ON SCHEMA {quote_identifier(schema)} TO {quote_identifier(user)}",
    ]


def run_crate_sql(
    store: CrateStreamStore, sql: str, views: Mapping[str, StreamView], limits: SqlLimits
) -> pa.Table:
    check_crate_grammar(sql, store.schema)
    compiled = compile_stream_sql(sql, views, dialect="postgres", schema=store.schema)
    check_crate_grammar(compiled, store.schema)
    connection: Any = getattr(store, "reader_connection", None) or store._connection
    cursor = connection.cursor()
    try:
        # servers before 5.7 lack the setting: the rows are still bounded
        with contextlib.suppress(Exception):
            cursor.execute(f"SET SESSION statement_timeout = '{int(limits.timeout_s * 1000)}ms'")
        cursor.execute(compiled)
        names = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(limits.max_rows + 1)
    except SqlRefused:
        raise
    except Exception as exc:  # the crate client raises its own DB-API errors
        raise ValidationError(f"CrateDB refused the statement: {exc}") from None
    finally:
        cursor.close()
    table = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])
    if not rows:
        table = pa.table({name: pa.array([], pa.null()) for name in names})
    return check_result(table, limits)
