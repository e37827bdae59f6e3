"""The embedded entity store: one SQLite file per tenant (stdlib ``sqlite3``, WAL, JSON1).

Layout: ``entities`` has real columns for the system fields and the attributes as a JSON text
column; ``associations`` holds links (primary key over role, source and target, indexed from both
ends); ``meta`` holds JSON documents by ``(namespace, key)``; ``model_indexes`` remembers the
index specs behind the ``mdl_*`` expression indexes.

Its parts: the JSON and datetime encoding (:mod:`~workbench.storage.sqlite_codec`), the query
compiler (:mod:`~workbench.storage.sqlite_query`), tables, rows and model indexes
(:mod:`~workbench.storage.sqlite_schema`) and aggregations
(:mod:`~workbench.storage.sqlite_aggregate`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Any, Literal

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    StoreLocked,
    ValidationError,
    WorkbenchError,
)
from workbench.query.aggregation import AggregationResult, EntityAggregation
from workbench.query.cursor import encode_cursor
from workbench.query.model import (
    EntityQuery,
    Page,
)
from workbench.storage.base import (
    EntityStore,
    IndexSpec,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)
from workbench.storage.parents import PARENT_ROLE
from workbench.storage.sqlite_aggregate import aggregate_sqlite, create_aggregate_index
from workbench.storage.sqlite_codec import decode_json, encode_json, format_datetime
from workbench.storage.sqlite_query import (
    _Compiler,
    _quote_identifier,
    _resolve,
    _sql_contains,
    _sql_like,
    _sql_regexp,
    _value_at,
)
from workbench.storage.sqlite_schema import (
    _SCHEMA,
    _check_new_ids,
    _check_spec,
    _check_versions,
    _ensure_parent_column,
    _entity_row,
    _existing_duplicate,
    _index_ddl,
    _index_name,
    _parent_sources_of,
    _rebuild_outdated_indexes,
    _refresh_parents,
    _row_to_entity,
    _spec_from_json,
    _spec_to_json,
    _unique_conflict,
)

__all__ = ["SqliteEntityStore", "decode_json", "encode_json", "format_datetime"]

_SCHEME = "sqlite://"
_MEMORY = ":memory:"
_PAGE_SIZE = 16384
_ANALYZE_MIN_ROWS = 1000  # re-analyze after this many inserts, or as many as the table held
#: ck_type_id given to rows being rewritten by a batch: no type id can equal it (see _TYPE_ID),
#: so the rows leave every partial unique index until their new values are written.
_PENDING_TYPE = " pending"


_ENTITY_COLUMNS = (
    "rt_id, ck_type_id, rt_well_known_name, rt_version, rt_creation_datetime,"
    " rt_changed_datetime, archived, attributes"
)
_ENTITY_COLUMNS_E = ", ".join("e." + column.strip() for column in _ENTITY_COLUMNS.split(","))


class SqliteEntityStore(EntityStore):
    """The entity store in one SQLite file (or in memory), safe to share between threads.

    Every :meth:`apply` runs in one ``BEGIN IMMEDIATE`` transaction, so
    :meth:`supports_transactions` is True: a failing batch changes nothing.
    """

    def __init__(self, path: str, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.path = path
        self._lock = threading.RLock()
        self._specs: dict[str, IndexSpec] = {}
        self._written = 0
        self._rows_at_analyze = 0
        try:
            if path != _MEMORY:
                FilePath(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                path,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=512,
            )
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"cannot open the SQLite entity store at {path!r} ({exc}); check that the "
                "directory exists and is writable"
            ) from exc
        try:
            self._setup(self._conn)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    @classmethod
    def open(cls, url: str, **options: Any) -> SqliteEntityStore:
        """Open ``sqlite:///absolute/path.db`` (parent directories are created) or
        ``sqlite:///:memory:``. Option: ``timeout`` (seconds to wait for another writer)."""
        if not url.startswith(_SCHEME + "/"):
            raise ValidationError(
                f"SQLite URL {url!r} must look like sqlite:///absolute/path.db or "
                "sqlite:///:memory:"
            )
        rest = url[len(_SCHEME) :]
        path = _MEMORY if rest == "/" + _MEMORY else rest
        if "?" in path or "\x00" in path:
            raise ValidationError(f"SQLite URL {url!r} must not carry a query string")
        unknown = set(options) - {"timeout"}
        if unknown:
            raise ValidationError(
                f"unknown SQLite entity store option(s) {sorted(unknown)}; known: timeout"
            )
        return cls(path, url, timeout=float(options.get("timeout", 30.0)))

    def _setup(self, conn: sqlite3.Connection) -> None:
        with self._translate():
            # for a new file only (before WAL): bigger pages make bulk writes cheaper
            conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            if self.path != _MEMORY:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=268435456")
            conn.create_function("wb_like", 3, _sql_like, deterministic=True)
            conn.create_function("wb_regexp", 3, _sql_regexp, deterministic=True)
            conn.create_function("wb_contains", 3, _sql_contains, deterministic=True)
            with self._transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                _ensure_parent_column(conn, self.path)
                rows = conn.execute("SELECT spec FROM model_indexes").fetchall()
                self._specs = {spec.name: spec for spec in (_spec_from_json(r[0]) for r in rows)}
                rebuilt = _rebuild_outdated_indexes(conn, self._specs)
            if rebuilt:
                self._analyze(conn)
            self._rows_at_analyze = int(
                conn.execute("SELECT max(rowid) FROM entities").fetchone()[0] or 0
            )

    def __repr__(self) -> str:
        return f"SqliteEntityStore({self.url!r})"

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn sqlite3 errors into workbench errors."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"the write collides with stored data: {exc}") from exc
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreLocked(
                    f"the SQLite entity store {self.path!r} is locked by another writer "
                    f"({text}); retry, or raise the 'timeout' option"
                ) from exc
            raise WorkbenchError(f"SQLite entity store {self.path!r} failed: {text}") from exc
        except sqlite3.ProgrammingError as exc:
            raise BackendUnavailable(
                f"the SQLite entity store {self.path!r} is closed ({exc}); open it again"
            ) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"the SQLite entity store {self.path!r} cannot be used ({exc})"
            ) from exc
        except OverflowError as exc:
            raise ValidationError(f"a number is too large for the entity store: {exc}") from exc

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate():
            if self._conn is None:
                raise BackendUnavailable(
                    f"the SQLite entity store {self.url!r} is closed; open it again"
                )
            yield self._conn

    # --- the port ---------------------------------------------------------------------------

    def supports_transactions(self) -> bool:
        return True

    def apply(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        # Encode outside the lock: JSON work need not block other threads.
        inserts = [_entity_row(entity) for entity in batch.inserts]
        updates = [(_entity_row(entity), expected) for entity, expected in batch.updates]
        meta = [
            (
                write.namespace,
                write.key,
                None if write.document is None else encode_json(write.document),
            )
            for write in batch.meta
        ]
        with self._connection() as conn:
            with self._transaction(conn):
                self._apply(conn, batch, inserts, updates, meta)
            self._written += len(inserts)
            if self._written >= max(_ANALYZE_MIN_ROWS, self._rows_at_analyze):
                self._analyze(conn)

    def _analyze(self, conn: sqlite3.Connection) -> None:
        """Refresh the planner's statistics: without them SQLite may sort a whole type instead of
        walking a model index. A full ANALYZE (~0.4 s at a million entities; sampled statistics
        misjudge the type index) run each time the table doubles costs little over an import."""
        conn.execute("ANALYZE")
        row = conn.execute("SELECT max(rowid) FROM entities").fetchone()
        self._rows_at_analyze = int(row[0] or 0)
        self._written = 0

    def _apply(
        self,
        conn: sqlite3.Connection,
        batch: WriteBatch,
        inserts: list[tuple[Any, ...]],
        updates: list[tuple[tuple[Any, ...], int | None]],
        meta: list[tuple[str, str, str | None]],
    ) -> None:
        # children whose parent id (entities.parent_rt_id, storage/parents.py) may change
        parented = [
            a.source_rt_id
            for a in (*batch.remove_associations, *batch.add_associations)
            if a.role_id == PARENT_ROLE
        ]
        if batch.erase:
            parented += _parent_sources_of(conn, batch.erase)
            ids = json.dumps(list(batch.erase))
            for column in ("source_rt_id", "target_rt_id"):
                conn.execute(
                    f"DELETE FROM associations WHERE {column} IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            conn.execute(
                "DELETE FROM entities WHERE rt_id IN (SELECT value FROM json_each(?))", (ids,)
            )
        if batch.remove_associations:
            conn.executemany(
                "DELETE FROM associations WHERE role_id = ? AND source_rt_id = ? "
                "AND target_rt_id = ?",
                [(a.role_id, a.source_rt_id, a.target_rt_id) for a in batch.remove_associations],
            )
        if updates:
            _check_versions(conn, updates)
            if len(updates) > 1:
                # Take the rows out of every unique index first, so uniqueness is judged on the
                # state after the batch (two entities may swap values).
                conn.executemany(
                    "UPDATE entities SET ck_type_id = ?, rt_well_known_name = NULL WHERE rt_id = ?",
                    [(_PENDING_TYPE, row[0]) for row, _ in updates],
                )
            self._write(
                conn,
                "UPDATE entities SET ck_type_id = ?, rt_well_known_name = ?, rt_version = ?, "
                "rt_creation_datetime = ?, rt_changed_datetime = ?, archived = ?, attributes = ? "
                "WHERE rt_id = ?",
                [(*row[1:], row[0]) for row, _ in updates],
                [entity for entity, _ in batch.updates],
            )
        if inserts:
            _check_new_ids(conn, [row[0] for row in inserts])
            self._write(
                conn,
                f"INSERT INTO entities ({_ENTITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
                [*batch.inserts, *(entity for entity, _ in batch.updates)],
            )
        if batch.add_associations:
            conn.executemany(
                "INSERT OR IGNORE INTO associations (role_id, source_rt_id, source_ck_type_id, "
                "target_rt_id, target_ck_type_id) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        a.role_id,
                        a.source_rt_id,
                        a.source_ck_type_id,
                        a.target_rt_id,
                        a.target_ck_type_id,
                    )
                    for a in batch.add_associations
                ],
            )
        _refresh_parents(conn, parented)
        for namespace, key, document in meta:
            if document is None:
                conn.execute("DELETE FROM meta WHERE namespace = ? AND key = ?", (namespace, key))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (namespace, key, document) VALUES (?, ?, ?)",
                    (namespace, key, document),
                )

    def _write(
        self,
        conn: sqlite3.Connection,
        sql: str,
        rows: list[tuple[Any, ...]],
        candidates: list[StoredEntity],
    ) -> None:
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            # Still inside the transaction: find the value that collides, then roll back.
            raise _unique_conflict(conn, exc, candidates, self._specs) from exc

    def get_many(
        self, rt_ids: Sequence[str], include_archived: bool = True
    ) -> dict[str, StoredEntity]:
        if not rt_ids:
            return {}
        hide = "" if include_archived else " AND archived = 0"
        with self._connection() as conn:
            if len(rt_ids) == 1:
                rows = conn.execute(
                    f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE rt_id = ?{hide}", (rt_ids[0],)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_ENTITY_COLUMNS} FROM entities "
                    f"WHERE rt_id IN (SELECT value FROM json_each(?)){hide}",
                    (json.dumps(list(rt_ids)),),
                ).fetchall()
        return {row[0]: _row_to_entity(row) for row in rows}

    def entity_types(self, rt_ids: Sequence[str], include_archived: bool = True) -> dict[str, str]:
        """rtId → ckTypeId of the stored entities among ``rt_ids``: :meth:`get_many` without
        decoding the entities (the entity service checks association targets with it)."""
        if not rt_ids:
            return {}
        hide = "" if include_archived else " AND archived = 0"
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT rt_id, ck_type_id FROM entities "
                f"WHERE rt_id IN (SELECT value FROM json_each(?)){hide}",
                (json.dumps(list(rt_ids)),),
            ).fetchall()
        return dict(rows)

    def get_by_well_known_name(self, name: str) -> StoredEntity | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_ENTITY_COLUMNS} FROM entities "
                "WHERE rt_well_known_name = ? AND archived = 0",
                (name,),
            ).fetchone()
        return None if row is None else _row_to_entity(row)

    def _compiler(self) -> _Compiler:
        type_sets = {tuple(sorted(set(spec.type_ids))) for spec in self._specs.values()}
        return _Compiler(sorted(type_sets))

    def _compile_find(
        self, query: EntityQuery
    ) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]] | None]:
        """The page statement and, when ``include_total``, the count statement of ``query``."""
        if query.first is not None and query.first < 0:
            raise ValidationError(f"first must be 0 or more, got {query.first}")
        sort = query.effective_sort()
        targets = [_resolve(key.path, "e") for key in sort]
        compiler = self._compiler()
        where = compiler.where(query)
        total = None
        if query.include_total:
            total_sql = f"SELECT count(*) FROM entities AS e WHERE {' AND '.join(where) or '1'}"
            total = (total_sql, dict(compiler.params))
        if query.after:
            where = [*where, compiler.keyset(sort, targets, query.after)]
        order = ", ".join(
            f"{t.sql} {'DESC' if k.descending else 'ASC'}"
            for k, t in zip(sort, targets, strict=True)
        )
        sql = (
            f"SELECT {_ENTITY_COLUMNS_E} FROM entities AS e "
            f"WHERE {' AND '.join(where) or '1'} ORDER BY {order}"
        )
        if query.first is not None:
            sql += f" LIMIT {compiler.bind(query.first + 1)}"
        return (sql, compiler.params), total

    def explain(self, query: EntityQuery) -> list[str]:
        """SQLite's query plan for :meth:`find` of ``query`` (one line per step), to check that
        a filter or sort is served by an index."""
        (sql, params), _ = self._compile_find(query)
        with self._connection() as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return [row[-1] for row in rows]

    def find(self, query: EntityQuery) -> Page[StoredEntity]:
        (sql, params), total_statement = self._compile_find(query)
        sort = query.effective_sort()
        total = None
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
            if total_statement is not None:
                total = conn.execute(*total_statement).fetchone()[0]
        has_next = query.first is not None and len(rows) > query.first
        if has_next:
            rows = rows[: query.first]
        items = [_row_to_entity(row) for row in rows]
        shown = items if query.item_cursors else items[-1:]
        cursors = [
            encode_cursor([_value_at(entity, key.path) for key in sort], sort=sort)
            for entity in shown
        ]
        return Page(
            items=items,
            has_next_page=has_next,
            end_cursor=cursors[-1] if cursors else None,
            cursors=cursors if query.item_cursors else [],
            total_count=total,
        )

    def count(self, query: EntityQuery) -> int:
        compiler = self._compiler()
        where = compiler.where(query)
        sql = f"SELECT count(*) FROM entities AS e WHERE {' AND '.join(where) or '1'}"
        with self._connection() as conn:
            result: int = conn.execute(sql, compiler.params).fetchone()[0]
        return result

    def aggregate(self, aggregation: EntityAggregation) -> AggregationResult:
        return aggregate_sqlite(self, aggregation)

    def supports_aggregate_indexes(self) -> bool:
        return True

    def create_aggregate_index(self, aggregation: EntityAggregation) -> str:
        return create_aggregate_index(self, aggregation)

    def associations(
        self,
        rt_ids: Sequence[str],
        direction: Literal["outbound", "inbound"],
        role_id: str | None = None,
    ) -> list[StoredAssociation]:
        if direction not in ("outbound", "inbound"):
            raise ValidationError(f"direction {direction!r} must be 'outbound' or 'inbound'")
        if not rt_ids:
            return []
        column = "source_rt_id" if direction == "outbound" else "target_rt_id"
        sql = (
            "SELECT role_id, source_rt_id, source_ck_type_id, target_rt_id, target_ck_type_id "
            f"FROM associations WHERE {column} IN (SELECT value FROM json_each(?))"
        )
        params: tuple[Any, ...] = (json.dumps(list(rt_ids)),)
        if role_id is not None:
            sql += " AND role_id = ?"
            params = (*params, role_id)
        sql += " ORDER BY role_id, source_rt_id, target_rt_id"
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [StoredAssociation(*row) for row in rows]

    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        wanted: dict[str, tuple[IndexSpec, str]] = {}
        for spec in specs:
            _check_spec(spec)
            if _index_name(spec) in wanted:
                raise ValidationError(f"index name {spec.name!r} is listed twice")
            wanted[_index_name(spec)] = (spec, _index_ddl(spec))
        with self._connection() as conn, self._transaction(conn):
            existing = dict(
                conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND name LIKE 'mdl\\_%' ESCAPE '\\'"
                ).fetchall()
            )
            for name, ddl in existing.items():
                if name not in wanted or wanted[name][1] != ddl:
                    conn.execute(f"DROP INDEX {_quote_identifier(name)}")
            for name, (spec, ddl) in wanted.items():
                if existing.get(name) == ddl:
                    continue
                try:
                    conn.execute(ddl)
                except sqlite3.IntegrityError as exc:
                    raise _existing_duplicate(conn, spec) from exc
            conn.execute("DELETE FROM model_indexes")
            conn.executemany(
                "INSERT INTO model_indexes (name, spec) VALUES (?, ?)",
                [(spec.name, _spec_to_json(spec)) for spec, _ in wanted.values()],
            )
            self._specs = {spec.name: spec for spec, _ in wanted.values()}
            self._analyze(conn)

    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT document FROM meta WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        if row is None:
            return None
        document: dict[str, Any] = decode_json(row[0])
        return document

    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT key, document FROM meta WHERE namespace = ? ORDER BY key", (namespace,)
            ).fetchall()
        return {key: decode_json(document) for key, document in rows}

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                with self._translate():
                    conn.execute("PRAGMA optimize")  # keep planner statistics fresh for next time
            finally:
                conn.close()

    def drop(self) -> None:
        self.close()
        if self.path == _MEMORY:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            FilePath(self.path + suffix).unlink(missing_ok=True)
