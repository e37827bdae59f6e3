"""The production stream store: CrateDB through the ``crate`` DB-API client, one schema per tenant.

URL: ``crate://host:4200/schema?user=U&password=P&ssl=true`` (or ``crate://U:P@host:4200/schema``).

Layout in the tenant's schema: one table per stream table (``ts_<library>__<type>``) with
``"rtId" TEXT``, ``"timestamp" BIGINT`` and one column per value column, ``PRIMARY KEY ("rtId",
"timestamp")``; ``wb_stream_tables`` maps logical names to tables and keeps each column's logical
type; ``wb_stream_meta`` keeps JSON metadata documents.

Why ``BIGINT`` for timestamps: CrateDB's ``TIMESTAMP`` keeps milliseconds, the port promises
microseconds. Timestamps (the key and ``timestamp`` value columns) are therefore stored as
microseconds since the Unix epoch, and bucketing is integer arithmetic.

Points are written by a plain bulk ``INSERT`` (10,000 rows a request); the rows CrateDB rejects
(their key exists) are sent again as upserts, ``INSERT ... ON CONFLICT ("rtId", "timestamp") DO
UPDATE SET c = coalesce(excluded.c, c)``: exactly the port's last-write-wins rule, at the cost of
an upsert only where one is needed. Writes are followed by ``REFRESH TABLE`` so that a
read right after a write sees it. CrateDB has no transactions: a batch that fails half-way leaves
the rows written before the failure (the rows are validated before anything is sent).

What is proven where: every statement this adapter emits is checked against CrateDB's own grammar
(``cratedb-sqlparse``) and the wiring through the ``crate`` client is tested without a server;
the behaviour (the contract suite) is proven on a live CrateDB only when
``WORKBENCH_TEST_CRATEDB_URL`` is set (see ``tests/storage/test_crate.py``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    ValidationError,
    WorkbenchError,
)
from workbench.storage.arrow import (
    check_new_columns,
    free_physical_name,
    missing_columns,
)
from workbench.storage.base import (
    StreamColumn,
    StreamTable,
)
from workbench.storage.sql_stream_store import SqlStreamStore
from workbench.storage.stream_sql import StreamSqlDialect, unique_columns
from workbench.storage.stream_sql import quote_identifier as _q

__all__ = ["CrateDialect", "CrateStreamStore", "parse_crate_url"]


class CrateDialect(StreamSqlDialect):
    """What CrateDB writes differently: timestamps stored and bound as microseconds (``BIGINT``),
    buckets by integer arithmetic, ``rtId`` filters as ``= ANY(array)``, ``min_by``/``max_by``."""

    column_types = {
        "double": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "varchar": "TEXT",
        "timestamp": "BIGINT",
    }
    first_function = "min_by"
    last_function = "max_by"

    def timestamp_value(self, micros: int) -> Any:
        return micros

    def rt_ids_condition(self, rt_ids: list[str]) -> tuple[str, list[Any]]:
        return '"rtId" = ANY(?)', [rt_ids]

    def bucket_select(self, source: str, size: int, expressions: str, where: str) -> str:
        return (
            f'SELECT "rtId", "timestamp" - ((("timestamp" % {size}) + {size}) % {size}) '
            f"AS bucket, {expressions} FROM {source}{where} GROUP BY 1, 2 ORDER BY 1, 2"
        )


_SQL = CrateDialect()
_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: rows per bulk request: large enough to amortise HTTP, small enough for CrateDB's bulk limits
BULK_ROWS = 10_000


def parse_crate_url(url: str) -> tuple[dict[str, Any], str, str]:
    """``(connect keyword arguments, schema, url without credentials)`` of a ``crate://`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "crate" or not parts.hostname:
        raise ValidationError(
            f"CrateDB URL {url!r} is not of the form crate://host:4200/schema?user=...&password=..."
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"user", "password", "ssl", "verify_ssl_cert", "timeout"}
    if unknown:
        raise ValidationError(
            f"CrateDB URL {url!r} has unknown parameters {sorted(unknown)}; "
            "use user, password, ssl, verify_ssl_cert, timeout"
        )
    schema = unquote(parts.path.strip("/")) or "doc"
    if not _SCHEMA.match(schema):
        raise ValidationError(
            f"CrateDB schema {schema!r} in {url!r} is not usable: lower-case letters, digits and "
            "'_', starting with a letter (one schema per tenant)"
        )
    ssl = query.get("ssl", "false").lower() in {"1", "true", "yes"}
    port = parts.port or 4200
    kwargs: dict[str, Any] = {
        "servers": f"{'https' if ssl else 'http'}://{parts.hostname}:{port}",
        "username": unquote(parts.username) if parts.username else query.get("user"),
        "password": unquote(parts.password) if parts.password else query.get("password"),
        "schema": schema,
    }
    if "verify_ssl_cert" in query:
        kwargs["verify_ssl_cert"] = query["verify_ssl_cert"].lower() in {"1", "true", "yes"}
    if "timeout" in query:
        kwargs["timeout"] = float(query["timeout"])
    safe = f"crate://{parts.hostname}:{port}/{schema}"
    return kwargs, schema, safe


class CrateStreamStore(SqlStreamStore):
    """A tenant's stream data in one CrateDB schema (see the module docstring)."""

    dialect = _SQL

    def __init__(self, connection: Any, schema: str, url: str) -> None:
        self.url = url
        self.schema = schema
        self._connection = connection
        self._lock = threading.RLock()
        self._closed = False
        self._tables_table = f"{_q(schema)}.wb_stream_tables"
        self._meta_table = f"{_q(schema)}.wb_stream_meta"
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._tables_table} ("
            '"name" TEXT PRIMARY KEY, "physical" TEXT NOT NULL, "columns" TEXT NOT NULL)'
        )
        self._execute(_SQL.meta_create(self._meta_table))

    @classmethod
    def open(
        cls, url: str, *, connect: Callable[..., Any] | None = None, **options: Any
    ) -> CrateStreamStore:
        """Open the schema named in ``url``. ``connect`` replaces ``crate.client.connect`` (it is
        called with the same keyword arguments); ``options`` are passed on to it."""
        kwargs, schema, safe = parse_crate_url(url)
        if connect is None:
            from crate import client

            connect = client.connect
        try:
            connection = connect(**kwargs, **options)
        except Exception as exc:
            raise BackendUnavailable(f"cannot connect to CrateDB at {safe}: {exc}") from exc
        try:
            return cls(connection, schema, safe)
        except BaseException:
            connection.close()
            raise

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _cursor(self, what: str) -> Iterator[Any]:
        if self._closed:
            raise BackendUnavailable(f"the stream store {self.url} is closed")
        from crate.client import exceptions as crate_errors

        cursor = self._connection.cursor()
        try:
            yield cursor
        except WorkbenchError:
            raise
        except crate_errors.IntegrityError as exc:
            raise Conflict(f"{what}: {exc}") from exc
        except crate_errors.ConnectionError as exc:
            raise BackendUnavailable(
                f"{what}: CrateDB at {self.url} is unreachable: {exc}"
            ) from exc
        except crate_errors.ProgrammingError as exc:
            raise ValidationError(f"{what}: CrateDB refused the statement: {exc}") from exc
        except crate_errors.Error as exc:
            raise WorkbenchError(f"{what} failed in CrateDB: {exc}") from exc
        finally:
            cursor.close()

    def _execute(self, sql: str, params: Sequence[Any] | None = None, what: str = "") -> Any:
        with self._cursor(what or "talking to CrateDB") as cursor:
            cursor.execute(sql, list(params) if params is not None else None)
            return cursor.fetchall() if cursor.description else cursor.rowcount

    def _refresh(self, physical: str) -> None:
        self._execute(f"REFRESH TABLE {self._t(physical)}")

    def _t(self, physical: str) -> str:
        return f"{_q(self.schema)}.{_q(physical)}"

    def _source(self, table: StreamTable) -> str:
        return self._t(table.physical_name)

    def _rows(self, sql: str, params: list[Any], what: str) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = self._execute(sql, params, what)
        return rows

    def _arrow(self, sql: str, params: list[Any], schema: pa.Schema, what: str) -> pa.Table:
        return _to_arrow(self._execute(sql, params, what), schema)

    def _change(self, sql: str, params: list[Any], what: str, changed: str) -> int:
        count = self._execute(sql, params, what)
        self._execute(f"REFRESH TABLE {changed}")
        return count if isinstance(count, int) and count >= 0 else 0

    # -- tables ------------------------------------------------------------------------------

    def _load(self, where: str = "", params: Sequence[Any] = ()) -> list[StreamTable]:
        rows = self._execute(
            f'SELECT "name", "physical", "columns" FROM {self._tables_table}{where}',
            params,
            "listing stream tables",
        )
        tables = []
        for name, physical, columns in rows:
            parsed = tuple(StreamColumn(c["name"], c["type"]) for c in json.loads(columns))
            tables.append(StreamTable(name, physical, parsed))
        return tables

    def table(self, name: str) -> StreamTable | None:
        # a primary-key lookup is real-time in CrateDB (no refresh needed)
        found = self._load(' WHERE "name" = ?', [name])
        return found[0] if found else None

    def tables(self) -> list[StreamTable]:
        self._execute(f"REFRESH TABLE {self._tables_table}")
        return sorted(self._load(), key=lambda t: t.name)

    def ensure_table(self, name: str, columns: Sequence[StreamColumn]) -> StreamTable:
        check_new_columns(columns, _SQL.column_types)
        with self._lock:
            existing = self.table(name)
            if existing is None:
                physical = free_physical_name(name, {t.physical_name for t in self.tables()})
                unique = unique_columns(columns)
                self._execute(
                    f'CREATE TABLE IF NOT EXISTS {self._t(physical)} ("rtId" TEXT NOT NULL, '
                    f'"timestamp" BIGINT NOT NULL{_SQL.column_definitions(unique)}, '
                    'PRIMARY KEY ("rtId", "timestamp"))',
                    what=f"creating stream table {name}",
                )
                self._save(name, physical, unique, insert=True)
                return StreamTable(name, physical, tuple(unique))
            missing = missing_columns(existing, columns)
            if not missing:
                return existing
            present = {
                str(row[0]).lower()
                for row in self._execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ?",
                    [self.schema, existing.physical_name],
                )
            }
            for column in missing:
                # a column added by an earlier attempt that failed before recording it is reused
                if column.name.lower() not in present:
                    self._execute(
                        _SQL.add_column(self._t(existing.physical_name), column),
                        what=f"adding column {column.name} to stream table {name}",
                    )
            grown = (*existing.columns, *missing)
            self._save(name, existing.physical_name, grown, insert=False)
            return StreamTable(name, existing.physical_name, grown)

    def _save(
        self, name: str, physical: str, columns: Sequence[StreamColumn], *, insert: bool
    ) -> None:
        document = json.dumps([{"name": c.name, "type": c.type} for c in columns])
        if insert:
            self._execute(
                f'INSERT INTO {self._tables_table} ("name", "physical", "columns") '
                'VALUES (?, ?, ?) ON CONFLICT ("name") '
                'DO UPDATE SET "columns" = excluded."columns"',
                [name, physical, document],
            )
        else:
            self._execute(
                f'UPDATE {self._tables_table} SET "columns" = ? WHERE "name" = ?', [document, name]
            )

    def drop_table(self, name: str) -> None:
        with self._lock:
            table = self.table(name)
            if table is None:
                return
            self._execute(f"DROP TABLE IF EXISTS {self._t(table.physical_name)}")
            self._execute(f'DELETE FROM {self._tables_table} WHERE "name" = ?', [name])

    # -- writing -----------------------------------------------------------------------------

    def _upsert(self, table: StreamTable, points: pa.Table) -> None:
        name = table.name
        names = points.column_names
        values = [n for n in names if n not in ("rtId", "timestamp")]
        if values:
            sets = ", ".join(f"{_q(v)} = coalesce(excluded.{_q(v)}, {_q(v)})" for v in values)
            conflict = f"DO UPDATE SET {sets}"
        else:
            conflict = "DO NOTHING"
        insert = (
            f"INSERT INTO {self._t(table.physical_name)} ({', '.join(_q(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        upsert = f'{insert} ON CONFLICT ("rtId", "timestamp") {conflict}'
        columns = [_to_python(points.column(n)) for n in names]
        rows = [list(row) for row in zip(*columns, strict=True)]
        with self._cursor(f"writing stream points to {name}") as cursor:
            for offset in range(0, len(rows), BULK_ROWS):
                # ingest is mostly new points: a plain bulk INSERT (CrateDB's fast path); the
                # rows it rejects (a key already stored, or a row of the batch that repeats one)
                # then go through the upsert, in their order, which merges them as before
                bulk = rows[offset : offset + BULK_ROWS]
                results = cursor.executemany(insert, bulk)
                rejected = [i for i, r in enumerate(results or []) if r.get("rowcount") == -2]
                if not rejected:
                    continue
                results = cursor.executemany(upsert, [bulk[i] for i in rejected])
                failed = [
                    rejected[i] for i, r in enumerate(results or []) if r.get("rowcount") == -2
                ]
                if failed:
                    raise WorkbenchError(
                        f"CrateDB rejected {len(failed)} point(s) of the batch written to {name} "
                        f"(first at row {offset + failed[0]}); rows before it were written"
                    )
        self._refresh(table.physical_name)

    # -- lifecycle ---------------------------------------------------------------------------

    def drop(self) -> None:
        """Drop every stream table and the store's own tables in the schema, then close."""
        for table in self.tables():
            self._execute(f"DROP TABLE IF EXISTS {self._t(table.physical_name)}")
        self._execute(f"DROP TABLE IF EXISTS {self._tables_table}")
        self._execute(f"DROP TABLE IF EXISTS {self._meta_table}")
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._connection.close()

    def __repr__(self) -> str:
        return f"<CrateStreamStore {self.url}>"


def _to_python(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_timestamp(column.type):
        return list(column.cast(pa.int64()).to_pylist())
    return list(column.to_pylist())


def _to_arrow(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    arrays = []
    for index, field in enumerate(schema):
        values = [row[index] for row in rows]
        if pa.types.is_timestamp(field.type):  # stored as microseconds
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
