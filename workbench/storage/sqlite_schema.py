"""Tables of the SQLite entity store, entity rows, and the model indexes: their DDL, the specs
remembered in ``model_indexes`` and the messages for values a unique index rejects.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from workbench.errors import (
    Conflict,
    NotFound,
    ValidationError,
)
from workbench.storage.base import (
    IndexSpec,
    StoredEntity,
)
from workbench.storage.parents import MANY_PARENTS, PARENT_ROLE
from workbench.storage.sqlite_codec import (
    _display,
    _parse_datetime,
    _stamp_text,
    decode_json,
    encode_json,
)
from workbench.storage.sqlite_query import (
    _check_type_id,
    _quote_identifier,
    _resolve,
    _types_any,
    _value_at,
)

_log = logging.getLogger("workbench.storage")

_INDEX_PREFIX = "mdl_"
_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (?:index '([^']+)'|(.+))")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    rt_id TEXT NOT NULL PRIMARY KEY,
    ck_type_id TEXT NOT NULL,
    rt_well_known_name TEXT,
    rt_version INTEGER NOT NULL,
    rt_creation_datetime TEXT NOT NULL,
    rt_changed_datetime TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL,
    parent_rt_id TEXT
);
CREATE INDEX IF NOT EXISTS sys_entities_type ON entities (ck_type_id, rt_id);
-- the few archived entities: aggregations leave out links to them without scanning the table
CREATE INDEX IF NOT EXISTS sys_entities_archived ON entities (rt_id) WHERE archived <> 0;
CREATE UNIQUE INDEX IF NOT EXISTS sys_entities_well_known_name ON entities (rt_well_known_name)
    WHERE archived = 0 AND rt_well_known_name IS NOT NULL;
CREATE TABLE IF NOT EXISTS associations (
    role_id TEXT NOT NULL,
    source_rt_id TEXT NOT NULL,
    source_ck_type_id TEXT NOT NULL,
    target_rt_id TEXT NOT NULL,
    target_ck_type_id TEXT NOT NULL,
    PRIMARY KEY (role_id, source_rt_id, target_rt_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sys_associations_source ON associations (source_rt_id, role_id);
CREATE INDEX IF NOT EXISTS sys_associations_target ON associations (target_rt_id, role_id);
CREATE TABLE IF NOT EXISTS meta (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_indexes (name TEXT NOT NULL PRIMARY KEY, spec TEXT NOT NULL);
"""


def _row_to_entity(row: tuple[Any, ...]) -> StoredEntity:
    rt_id, ck_type_id, well_known_name, version, created, changed, archived, attributes = row
    return StoredEntity(
        rt_id=rt_id,
        ck_type_id=ck_type_id,
        attributes=decode_json(attributes),
        rt_version=version,
        rt_creation_datetime=_parse_datetime(created),
        rt_changed_datetime=_parse_datetime(changed),
        rt_well_known_name=well_known_name,
        archived=bool(archived),
    )


def _entity_row(entity: StoredEntity) -> tuple[Any, ...]:
    rt_id = entity.rt_id
    if not isinstance(rt_id, str) or not rt_id:
        raise ValidationError(f"entity rtId {rt_id!r} must be a non-empty string")
    ck_type_id = _check_type_id(entity.ck_type_id)
    if not isinstance(entity.attributes, dict):
        raise ValidationError(f"attributes of entity {rt_id} must be a dict")
    try:
        attributes = encode_json(entity.attributes)
        created = _stamp_text(entity.rt_creation_datetime)
        changed = _stamp_text(entity.rt_changed_datetime)
    except ValidationError as exc:
        raise ValidationError(f"entity {rt_id}: {exc.message}") from None
    return (
        rt_id,
        ck_type_id,
        entity.rt_well_known_name,
        int(entity.rt_version),
        created,
        changed,
        1 if entity.archived else 0,
        attributes,
    )


def _spec_to_json(spec: IndexSpec) -> str:
    return json.dumps(
        {"name": spec.name, "kind": spec.kind, "type_ids": spec.type_ids, "paths": spec.paths}
    )


def _spec_from_json(text: str) -> IndexSpec:
    data = json.loads(text)
    return IndexSpec(
        data["name"],
        data["kind"],
        tuple(data["type_ids"]),
        tuple(tuple(path) for path in data["paths"]),
    )


def _index_name(spec: IndexSpec) -> str:
    return _INDEX_PREFIX + spec.name


def _index_where(spec: IndexSpec, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    where = _types_any(f"{prefix}ck_type_id", spec.type_ids)
    if spec.kind == "unique_not_deleted":
        where += f" AND {prefix}archived = 0"
    return where


def _index_ddl(spec: IndexSpec) -> str:
    columns = [_resolve(path, None).sql for path in spec.paths]
    unique = spec.kind in ("unique", "unique_not_deleted")
    if not unique and columns[-1] != "rt_id":
        columns.append("rt_id")  # serves ORDER BY key, rtId and keyset seeks without a sort
    return (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {_quote_identifier(_index_name(spec))} "
        f"ON entities ({', '.join(columns)}) WHERE {_index_where(spec)}"
    )


def _check_spec(spec: IndexSpec) -> None:
    if not isinstance(spec.name, str) or not spec.name or "\x00" in spec.name:
        raise ValidationError(f"index name {spec.name!r} must be a non-empty string")
    if spec.kind not in ("ascending", "text", "unique", "unique_not_deleted"):
        raise ValidationError(
            f"index {spec.name!r} has kind {spec.kind!r}; use ascending, text, unique or "
            "unique_not_deleted"
        )
    if not spec.type_ids:
        raise ValidationError(f"index {spec.name!r} covers no types; list its type ids")
    if not spec.paths:
        raise ValidationError(f"index {spec.name!r} has no paths; list the indexed paths")
    for type_id in spec.type_ids:
        _check_type_id(type_id)
    for path in spec.paths:
        _resolve(path, None)


def _check_versions(
    conn: sqlite3.Connection, updates: list[tuple[tuple[Any, ...], int | None]]
) -> None:
    ids = json.dumps([row[0] for row, _ in updates])
    stored = dict(
        conn.execute(
            "SELECT rt_id, rt_version FROM entities "
            "WHERE rt_id IN (SELECT value FROM json_each(?))",
            (ids,),
        ).fetchall()
    )
    for row, expected in updates:
        rt_id = row[0]
        if rt_id not in stored:
            raise NotFound(
                f"entity {rt_id} cannot be updated: it does not exist (it may have been "
                "erased); insert it as a new entity or re-read the data"
            )
        if expected is not None and stored[rt_id] != expected:
            raise Conflict(
                f"entity {rt_id} was changed concurrently: the update expected rtVersion "
                f"{expected} but the stored rtVersion is {stored[rt_id]}; re-read the "
                "entity and retry the update"
            )


def _check_new_ids(conn: sqlite3.Connection, rt_ids: list[str]) -> None:
    seen: set[str] = set()
    for rt_id in rt_ids:
        if rt_id in seen:
            raise Conflict(
                f"entity {rt_id} is inserted twice in one batch; give each entity its own rtId"
            )
        seen.add(rt_id)
    existing = conn.execute(
        "SELECT rt_id FROM entities WHERE rt_id IN (SELECT value FROM json_each(?)) LIMIT 1",
        (json.dumps(rt_ids),),
    ).fetchone()
    if existing is not None:
        raise Conflict(
            f"entity {existing[0]} already exists; insert it with a new rtId or update the "
            "existing entity"
        )


def _rebuild_outdated_indexes(conn: sqlite3.Connection, specs: Mapping[str, IndexSpec]) -> bool:
    """Recreate the model indexes an older version wrote with other DDL (once per file).

    Queries state each index's WHERE term literally, as :func:`_index_ddl` writes it now, so
    an index written differently (``ck_type_id IN (...)`` before) would go unused."""
    existing = dict(
        conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND name LIKE 'mdl\\_%' ESCAPE '\\'"
        ).fetchall()
    )
    rebuilt = False
    for spec in specs.values():
        name, ddl = _index_name(spec), _index_ddl(spec)
        if name in existing and existing[name] != ddl:
            conn.execute(f"DROP INDEX {_quote_identifier(name)}")
            conn.execute(ddl)
            rebuilt = True
    return rebuilt


def _unique_conflict(
    conn: sqlite3.Connection,
    exc: sqlite3.IntegrityError,
    candidates: list[StoredEntity],
    specs: Mapping[str, IndexSpec],
) -> Conflict:
    match = _UNIQUE_FAILED.match(str(exc))
    index = match.group(1) if match else None
    column = match.group(2) if match else None
    if column == "entities.rt_well_known_name":
        for entity in candidates:
            if entity.archived or entity.rt_well_known_name is None:
                continue
            other = conn.execute(
                "SELECT rt_id FROM entities WHERE rt_well_known_name = ? AND archived = 0 "
                "AND rt_id <> ? LIMIT 1",
                (entity.rt_well_known_name, entity.rt_id),
            ).fetchone()
            if other is not None:
                return Conflict(
                    f"rtWellKnownName {entity.rt_well_known_name!r} of entity {entity.rt_id} "
                    f"is already used by entity {other[0]}; choose another name or archive "
                    "that entity first"
                )
    if index and index.startswith(_INDEX_PREFIX) and index[len(_INDEX_PREFIX) :] in specs:
        spec = specs[index[len(_INDEX_PREFIX) :]]
        targets = [_resolve(path, None) for path in spec.paths]
        for entity in candidates:
            if entity.ck_type_id not in spec.type_ids:
                continue
            if spec.kind == "unique_not_deleted" and entity.archived:
                continue
            values = [
                t.encode(_value_at(entity, p)) for t, p in zip(targets, spec.paths, strict=True)
            ]
            if any(v is None for v in values):
                continue
            clauses = " AND ".join(f"{t.sql} = ?" for t in targets)
            other = conn.execute(
                f"SELECT rt_id FROM entities WHERE {_index_where(spec)} AND {clauses} "
                "AND rt_id <> ? LIMIT 1",
                (*values, entity.rt_id),
            ).fetchone()
            if other is not None:
                return _duplicate(spec, values, f"entity {entity.rt_id} and {other[0]}")
        return Conflict(f"unique index {spec.name!r} rejects a duplicate value ({exc})")
    return Conflict(f"the write collides with stored data ({exc}); re-read and retry")


def _existing_duplicate(conn: sqlite3.Connection, spec: IndexSpec) -> Conflict:
    exprs = [_resolve(path, None).sql for path in spec.paths]
    present = " AND ".join(f"{x} IS NOT NULL" for x in exprs)
    row = conn.execute(
        f"SELECT {', '.join(exprs)}, count(*) FROM entities "
        f"WHERE {_index_where(spec)} AND {present} "
        f"GROUP BY {', '.join(exprs)} HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    values = list(row[:-1]) if row else []
    return _duplicate(spec, values, f"{row[-1]} entities" if row else "several entities")


def _duplicate(spec: IndexSpec, values: Sequence[Any], holders: str) -> Conflict:
    shown = ", ".join(_display(v) for v in values)
    paths = ", ".join(
        ".".join(path[1:] if path[0] == "attributes" else path) for path in spec.paths
    )
    scope = " among non-archived entities" if spec.kind == "unique_not_deleted" else ""
    return Conflict(
        f"unique index {spec.name!r} ({paths}) allows each value once{scope}, but {shown} is "
        f"held by {holders}; change or archive one of them"
    )


# -- the parent id on the entity row (workbench/storage/parents.py) ------------------------------

#: rows back-filled per statement when a store gets the column (and a progress line each time)
_BACKFILL_CHUNK = 100_000

_PARENT_INDEX = (
    "CREATE INDEX IF NOT EXISTS sys_entities_parent ON entities (parent_rt_id) "
    "WHERE parent_rt_id IS NOT NULL"
)

#: the parent id of the entity ``entities.rt_id`` from its links (NULL, the one, or many)
_PARENT_OF_ROW = (
    "SELECT CASE count(*) WHEN 0 THEN NULL WHEN 1 THEN min(a.target_rt_id) ELSE ? END "
    "FROM associations AS a WHERE a.source_rt_id = entities.rt_id AND a.role_id = ?"
)


def _ensure_parent_column(conn: sqlite3.Connection, path: str) -> None:
    """Add and back-fill ``entities.parent_rt_id`` in a store written before it existed.

    Runs inside the transaction that opens the store: an interruption (a crash, a kill, an
    error) rolls the column back with everything else, and the next open starts again."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(entities)")}
    if "parent_rt_id" not in columns:
        conn.execute("ALTER TABLE entities ADD COLUMN parent_rt_id TEXT")
        total = conn.execute(
            "SELECT count(DISTINCT source_rt_id) FROM associations WHERE role_id = ?",
            (PARENT_ROLE,),
        ).fetchone()[0]
        if total:
            _log.info("entity store %s: keeping parent ids on %d entities", path, total)
        # the links in primary-key order (role, source): one pass, grouped without a sort
        links = conn.execute(
            "SELECT CASE count(*) WHEN 1 THEN min(target_rt_id) ELSE ? END, source_rt_id "
            "FROM associations WHERE role_id = ? GROUP BY source_rt_id",
            (MANY_PARENTS, PARENT_ROLE),
        )
        done = 0
        while chunk := links.fetchmany(_BACKFILL_CHUNK):
            _backfill(conn, chunk)
            done += len(chunk)
            _log.info("entity store %s: parent ids %d of %d", path, done, total)
    conn.execute(_PARENT_INDEX)


def _backfill(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    """Write ``(parent id, child id)`` pairs (a step of :func:`_ensure_parent_column`)."""
    conn.executemany("UPDATE entities SET parent_rt_id = ? WHERE rt_id = ?", rows)


def _parent_sources_of(conn: sqlite3.Connection, parent_ids: Iterable[str]) -> list[str]:
    """The children linked to ``parent_ids`` (read before the links are erased with them)."""
    ids = json.dumps(list(parent_ids))
    rows = conn.execute(
        "SELECT source_rt_id FROM associations WHERE role_id = ? "
        "AND target_rt_id IN (SELECT value FROM json_each(?))",
        (PARENT_ROLE, ids),
    ).fetchall()
    return [row[0] for row in rows]


def _refresh_parents(conn: sqlite3.Connection, rt_ids: Iterable[str]) -> None:
    """Recompute ``parent_rt_id`` of ``rt_ids`` from their links as they now are."""
    ids = list(dict.fromkeys(rt_ids))
    if ids:
        conn.execute(
            f"UPDATE entities SET parent_rt_id = ({_PARENT_OF_ROW}) "
            "WHERE rt_id IN (SELECT value FROM json_each(?))",
            (MANY_PARENTS, PARENT_ROLE, json.dumps(ids)),
        )


def _has_many_parents(conn: sqlite3.Connection) -> bool:
    """True when some child has several parent links (the column then cannot stand for them)."""
    row = conn.execute(
        "SELECT 1 FROM entities WHERE parent_rt_id = ? LIMIT 1", (MANY_PARENTS,)
    ).fetchone()
    return row is not None
