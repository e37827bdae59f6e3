"""User SQL on the DuckDB stream store: a connection of its own, interrupted on timeout, with
rows and bytes counted as the result streams in (see :mod:`workbench.streams.sql`)."""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa

from workbench.errors import BackendUnavailable, ValidationError
from workbench.storage.duckdb import DuckDBStreamStore
from workbench.streams.sql_compiler import SqlLimits, SqlRefused, check_result

__all__ = ["run_duckdb_sql"]

_BATCH_ROWS = 10_000


def run_duckdb_sql(store: DuckDBStreamStore, sql: str, limits: SqlLimits) -> pa.Table:
    """Run ``sql`` (already checked and rewritten) on ``store``'s database."""
    if store._closed or store._db.closed:
        raise BackendUnavailable(f"the stream store {store.url} is closed")
    connection = store._db.connection.cursor()
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        connection.interrupt()

    timer = threading.Timer(limits.timeout_s, interrupt)
    timer.daemon = True
    try:
        connection.execute("SET TimeZone = 'UTC'")
        timer.start()
        reader = connection.sql(sql).to_arrow_reader(_BATCH_ROWS)
        if reader is None:  # pragma: no cover - a query always has a result
            raise ValidationError("the statement returned no result")
        batches: list[pa.RecordBatch] = []
        rows = size = 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if rows > limits.max_rows or size > limits.max_bytes:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.InterruptException:
        raise SqlRefused(
            f"the statement ran longer than {limits.timeout_s:g} s (the limit) and was stopped"
        ) from None
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise SqlRefused(
                f"the statement ran longer than {limits.timeout_s:g} s (the limit) and was stopped"
            ) from None
        raise ValidationError(f"DuckDB refused the statement: {exc}") from None
    finally:
        timer.cancel()
        connection.close()
    return check_result(table, limits)
