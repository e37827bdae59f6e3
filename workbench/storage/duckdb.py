"""The embedded stream store: one DuckDB file per tenant (``duckdb:///abs/path/streams.duckdb``).

Layout: one table per stream table (``ts_<library>__<type>``) with ``"rtId" VARCHAR``,
``"timestamp" TIMESTAMPTZ`` and one column per value column; ``wb_stream_tables`` maps logical
names to table names and ``wb_stream_meta`` holds JSON metadata documents.

No index is declared on ``(rtId, timestamp)``: DuckDB keeps min/max zone maps per row group, and
every read here filters on ``timestamp`` (range and keyset predicate), so the scan skips the row
groups before the cursor; a deep page therefore costs what the first page costs (measured by
``workbench bench streams-query``). A primary-key ART index would cost more than 5x on ingest
(measured: 0.56 M rows/s against 4.5 M rows/s without it). Upserts are done without it: every
append first joins the batch against the stored rows of its time range; rows that exist are
updated (non-null columns only), the rest inserted. Appends are serialised by a per-file lock,
which makes that check-then-write safe; DuckDB itself admits one writing process per file.

Ownership: the process that opens the file records itself (pid, host, command, start time) in
``<file>.owner.json``. Another process gets :class:`~workbench.errors.StoreLocked` naming it; a
record left by a dead process is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    StoreLocked,
    ValidationError,
    WorkbenchError,
)
from workbench.storage.arrow import (
    check_new_columns,
    free_physical_name,
    from_micros,
    missing_columns,
)
from workbench.storage.base import (
    AggregateFunction,
    StreamColumn,
    StreamColumnType,
    StreamTable,
)
from workbench.storage.sql_stream_store import SqlStreamStore
from workbench.storage.stream_sql import StreamSqlDialect, unique_columns
from workbench.storage.stream_sql import quote_identifier as _q

__all__ = ["DuckDBDialect", "DuckDBStreamStore", "read_owner"]


class DuckDBDialect(StreamSqlDialect):
    """What DuckDB writes differently: ``TIMESTAMPTZ`` timestamps bound as datetimes, buckets
    from ``epoch_us``, ``rtId`` filters as ``IN (...)``, ``arg_min``/``arg_max``, and
    ``avg``/``sum`` cast to the result type in SQL."""

    column_types = {
        "double": "DOUBLE",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "varchar": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
    }
    first_function = "arg_min"
    last_function = "arg_max"

    def timestamp_value(self, micros: int) -> Any:
        return from_micros(micros)

    def rt_ids_condition(self, rt_ids: list[str]) -> tuple[str, list[Any]]:
        if not rt_ids:
            return "FALSE", []
        return f'"rtId" IN ({", ".join("?" for _ in rt_ids)})', list(rt_ids)

    def bucket_select(self, source: str, size: int, expressions: str, where: str) -> str:
        return (
            f'SELECT "rtId", make_timestamp(wb_bucket)::TIMESTAMPTZ AS bucket, {expressions} '
            f'FROM (SELECT *, epoch_us("timestamp") - ((epoch_us("timestamp") % {size}) + {size})'
            f" % {size} AS wb_bucket FROM {source}{where}) "
            'GROUP BY "rtId", wb_bucket ORDER BY "rtId", wb_bucket'
        )

    def aggregate_expression(self, column: StreamColumn, function: AggregateFunction) -> str:
        c = _q(column.name)
        alias = _q(f"{column.name}_{function}")
        if function == "avg":
            return f"avg({c})::DOUBLE AS {alias}"
        if function == "sum":
            return f"sum({c})::{self.column_types[column.type]} AS {alias}"
        return super().aggregate_expression(column, function)


_SQL = DuckDBDialect()
_LOGICAL_TYPES: dict[str, StreamColumnType] = {
    "DOUBLE": "double",
    "BIGINT": "bigint",
    "BOOLEAN": "boolean",
    "VARCHAR": "varchar",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
}
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<command>.*?) \(PID (?P<pid>\d+)\)")
_BATCH = "wb_batch"
_META = "wb_stream_meta"


def owner_file(path: Path) -> Path:
    return path.with_name(path.name + ".owner.json")


def read_owner(path: Path) -> dict[str, Any] | None:
    """The owner record of the DuckDB file at ``path`` (None when there is none or it is bad)."""
    try:
        record = json.loads(owner_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "command": " ".join(sys.argv) or sys.executable,
        "started": datetime.now(UTC).isoformat(),
    }


def _locked_error(path: Path, exc: Exception) -> StoreLocked:
    record = read_owner(path)
    if record is not None and (
        record.get("hostname") != socket.gethostname() or _pid_alive(int(record.get("pid", 0)))
    ):
        who = (
            f"process {record.get('pid')} on {record.get('hostname')} "
            f"({record.get('command')!r}, since {record.get('started')})"
        )
    else:
        match = _LOCK_HOLDER.search(str(exc))
        who = (
            f"process {match.group('pid')} ({match.group('command')!r})"
            if match
            else "another process"
        )
    return StoreLocked(
        f"the stream store {path} is owned by {who}; DuckDB allows one writing process per "
        "file, so this process cannot open it. Go through the Asset Repository API instead "
        "(`workbench serve asset-repository`, whose process then owns the file) rather than "
        "opening the file directly, or stop the owning process first."
    )


@dataclass
class _Database:
    """One open DuckDB file, shared by every store object of this process that opened it."""

    key: str
    path: Path | None
    connection: duckdb.DuckDBPyConnection
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    users: int = 0
    tables: dict[str, StreamTable] | None = None
    closed: bool = False


_DATABASES: dict[str, _Database] = {}
_DATABASES_LOCK = threading.Lock()


def _open_database(path: Path | None) -> _Database:
    if path is None:
        connection = duckdb.connect(":memory:")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise _locked_error(path, exc) from None
            raise BackendUnavailable(f"cannot open the stream store {path}: {exc}") from None
        # we hold DuckDB's file lock now, so any record left there is stale: take it over
        owner_file(path).write_text(json.dumps(_owner_record()) + "\n", encoding="utf-8")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS wb_stream_tables ("
            "name VARCHAR PRIMARY KEY, physical VARCHAR NOT NULL UNIQUE)"
        )
        connection.execute(_SQL.meta_create(_META))
    except BaseException:
        connection.close()
        if path is not None:
            owner_file(path).unlink(missing_ok=True)
        raise
    return _Database(str(path or ":memory:"), path, connection)


class DuckDBStreamStore(SqlStreamStore):
    """A tenant's stream data in one DuckDB file (see the module docstring for the layout)."""

    dialect = _SQL
    _meta_table = _META

    def __init__(self, database: _Database, url: str) -> None:
        self.url = url
        self._db = database
        self._local = threading.local()
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}
        self._cursors_lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, url: str, **options: Any) -> DuckDBStreamStore:
        """Open ``duckdb:///abs/path/streams.duckdb`` (or ``duckdb:///:memory:``)."""
        if options:
            raise ValidationError(f"duckdb stream store takes no options, got {sorted(options)}")
        parts = urlsplit(url)
        raw = unquote(parts.netloc + parts.path)
        if raw in {":memory:", "/:memory:"}:
            return cls(_open_database(None), url)
        if not parts.path.startswith("/") or parts.netloc:
            raise ValidationError(
                f"duckdb URL {url!r} needs an absolute path: duckdb:///abs/path/streams.duckdb"
            )
        path = Path(unquote(parts.path)).resolve()
        with _DATABASES_LOCK:
            database = _DATABASES.get(str(path))
            if database is None:
                database = _open_database(path)
                _DATABASES[str(path)] = database
            database.users += 1
        return cls(database, url)

    # -- connections -------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed or self._db.closed:
            raise BackendUnavailable(f"the stream store {self.url} is closed")
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._db.connection.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cursor
            with self._cursors_lock:
                alive = {t.ident for t in threading.enumerate()}
                for ident in [i for i in self._cursors if i not in alive]:
                    self._cursors.pop(ident).close()
                self._cursors[threading.get_ident()] = cursor
        return cursor

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except WorkbenchError:
            raise
        except duckdb.ConstraintException as exc:
            raise Conflict(f"{what}: {exc}") from exc
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            raise ValidationError(f"{what}: {exc}") from exc
        except duckdb.IOException as exc:
            raise BackendUnavailable(f"{what}: {exc}") from exc
        except duckdb.Error as exc:
            raise WorkbenchError(f"{what} failed in DuckDB: {exc}") from exc

    def _source(self, table: StreamTable) -> str:
        return table.physical_name

    def _rows(self, sql: str, params: list[Any], what: str) -> Sequence[Sequence[Any]]:
        with self._translated(what):
            return self._cursor().execute(sql, params).fetchall()

    def _arrow(self, sql: str, params: list[Any], schema: pa.Schema, what: str) -> pa.Table:
        with self._translated(what):
            result = self._cursor().sql(sql, params=params).to_arrow_table()
        return result.rename_columns(schema.names).cast(schema)

    def _change(self, sql: str, params: list[Any], what: str, changed: str) -> int:
        with self._db.write_lock, self._translated(what):
            row = self._cursor().execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor in a transaction: committed after the block, rolled back when it
        raises."""
        cursor = self._cursor()
        cursor.execute("BEGIN TRANSACTION")
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise

    # -- tables ------------------------------------------------------------------------------

    def _load_tables(self) -> dict[str, StreamTable]:
        cursor = self._cursor()
        mapping = cursor.execute("SELECT name, physical FROM wb_stream_tables").fetchall()
        columns: dict[str, list[StreamColumn]] = {}
        rows = cursor.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND database_name = current_database() "
            "ORDER BY table_name, column_index"
        ).fetchall()
        for table_name, column_name, data_type in rows:
            if column_name in ("rtId", "timestamp"):
                continue
            logical = _LOGICAL_TYPES.get(str(data_type))
            if logical is not None:
                columns.setdefault(table_name, []).append(StreamColumn(column_name, logical))
        return {
            name: StreamTable(name, physical, tuple(columns.get(physical, [])))
            for name, physical in mapping
        }

    def _tables(self) -> dict[str, StreamTable]:
        tables = self._db.tables
        if tables is None:
            with self._translated("listing stream tables"):
                tables = self._load_tables()
            self._db.tables = tables
        return tables

    def table(self, name: str) -> StreamTable | None:
        return self._tables().get(name)

    def tables(self) -> list[StreamTable]:
        return sorted(self._tables().values(), key=lambda t: t.name)

    def ensure_table(self, name: str, columns: Sequence[StreamColumn]) -> StreamTable:
        check_new_columns(columns, _SQL.column_types)
        with self._db.write_lock, self._translated(f"creating stream table {name}"):
            existing = self.table(name)
            if existing is not None:
                missing = missing_columns(existing, columns)
                if not missing:
                    return existing
            try:
                with self._transaction() as cursor:
                    if existing is None:
                        taken = {t.physical_name for t in self._tables().values()}
                        physical = free_physical_name(name, taken)
                        defs = _SQL.column_definitions(unique_columns(columns))
                        cursor.execute(
                            f'CREATE TABLE {physical} ("rtId" VARCHAR NOT NULL, '
                            f'"timestamp" TIMESTAMPTZ NOT NULL{defs})'
                        )
                        cursor.execute(
                            "INSERT INTO wb_stream_tables VALUES (?, ?)", [name, physical]
                        )
                    else:
                        for column in missing:
                            cursor.execute(_SQL.add_column(existing.physical_name, column))
            finally:
                self._db.tables = None
            created = self.table(name)
            assert created is not None
            return created

    def drop_table(self, name: str) -> None:
        with self._db.write_lock, self._translated(f"dropping stream table {name}"):
            table = self.table(name)
            if table is None:
                return
            try:
                with self._transaction() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {table.physical_name}")
                    cursor.execute("DELETE FROM wb_stream_tables WHERE name = ?", [name])
            finally:
                self._db.tables = None

    # -- writing -----------------------------------------------------------------------------

    def _upsert(self, table: StreamTable, points: pa.Table) -> None:
        name = table.name
        names = points.column_names
        columns = ", ".join(_q(n) for n in names)
        values = [n for n in names if n not in ("rtId", "timestamp")]
        bounds = pc.min_max(points.column("timestamp"))
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        target = table.physical_name
        key_match = 't."rtId" = b."rtId" AND t."timestamp" = b."timestamp"'
        with self._db.write_lock, self._translated(f"writing stream points to {name}"):
            cursor = self._cursor()
            cursor.register(_BATCH, points)
            try:
                # zone maps answer the range probe without reading data when the batch is newer
                # than everything stored (live ingest); only then is the key join needed
                overlapping = _count(
                    cursor,
                    f'SELECT count(*) FROM {target} WHERE "timestamp" BETWEEN ? AND ?',
                    [low, high],
                )
                if overlapping:
                    overlapping = _count(
                        cursor,
                        f"SELECT count(*) FROM {target} t JOIN {_BATCH} b ON {key_match} "
                        'WHERE t."timestamp" BETWEEN ? AND ?',
                        [low, high],
                    )
                insert = f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {_BATCH}"
                if overlapping == 0:
                    cursor.execute(insert)
                    return
                with self._transaction():
                    if values:
                        assignments = ", ".join(
                            f"{_q(v)} = coalesce(b.{_q(v)}, t.{_q(v)})" for v in values
                        )
                        cursor.execute(
                            f"UPDATE {target} AS t SET {assignments} FROM {_BATCH} AS b "
                            f'WHERE {key_match} AND t."timestamp" BETWEEN ? AND ?',
                            [low, high],
                        )
                    cursor.execute(
                        f"{insert} AS b WHERE NOT EXISTS (SELECT 1 FROM {target} t "
                        f'WHERE {key_match} AND t."timestamp" BETWEEN ? AND ?)',
                        [low, high],
                    )
            finally:
                cursor.unregister(_BATCH)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._cursors_lock:
            for cursor in self._cursors.values():
                with contextlib.suppress(duckdb.Error):
                    cursor.close()
            self._cursors.clear()
        database = self._db
        with _DATABASES_LOCK:
            database.users -= 1
            if database.users > 0:
                return
            _DATABASES.pop(database.key, None)
            if not database.closed:
                database.closed = True
                database.connection.close()
                if (
                    database.path is not None
                    and (read_owner(database.path) or {}).get("pid") == os.getpid()
                ):
                    owner_file(database.path).unlink(missing_ok=True)

    def drop(self) -> None:
        """Close the store and delete its file (with its WAL and owner record)."""
        path = self._db.path
        self._db.users = 1
        self.close()
        if path is not None:
            for candidate in (path, path.with_name(path.name + ".wal"), owner_file(path)):
                candidate.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<DuckDBStreamStore {self.url}>"


def _count(cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> int:
    row = cursor.execute(sql, params).fetchone()
    return int(row[0]) if row else 0
