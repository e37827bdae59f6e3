"""The parent id on SQLite entity rows (``entities.parent_rt_id``): what the write path keeps
there, that ``parent->`` aggregations join by it, and the migration of a store written before
the column existed (added and back-filled when the store opens, all or nothing)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.query.aggregation import EntityAggregation, Measure
from workbench.storage import sqlite_schema
from workbench.storage.base import StoredAssociation, WriteBatch
from workbench.storage.parents import MANY_PARENTS, PARENT_ROLE
from workbench.storage.sqlite import SqliteEntityStore
from workbench.storage.sqlite_aggregate import compile_aggregation
from workbench.testing.entity_aggregate_contract import (
    METERS,
    POWER,
    STATE,
    SYSTEM_PARENT_NAME,
)
from workbench.testing.entity_store_contract import BUILDING, METER, link, make_entity

BY_PARENT = EntityAggregation(
    METERS, (Measure("sum", POWER, "power"),), group_by=(STATE, SYSTEM_PARENT_NAME)
)


def _parents(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT rt_id, parent_rt_id FROM entities").fetchall())


def _columns(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(entities)")}


def _old_layout(path: Path) -> None:
    """Make ``path`` look like a store written before the column existed."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX sys_entities_parent")
        conn.execute("ALTER TABLE entities DROP COLUMN parent_rt_id")


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    """A closed store with 5 meters: 4 with a parent (2 each), 1 without; the expected column."""
    path = tmp_path / "entities.db"
    store = SqliteEntityStore.open(f"sqlite://{path}")
    halls = [make_entity({"Name": f"H{i}"}, ck_type_id=BUILDING) for i in range(2)]
    meters = [make_entity({"State": i % 2, "Power": 1.0}) for i in range(5)]
    links = [link(m, halls[i % 2], PARENT_ROLE) for i, m in enumerate(meters[:4])]
    store.apply(WriteBatch(inserts=[*halls, *meters], add_associations=links))
    store.close()
    expected: dict[str, str | None] = {h.rt_id: None for h in halls}
    expected.update({lk.source_rt_id: lk.target_rt_id for lk in links})
    expected[meters[4].rt_id] = None
    return path, expected


def test_the_write_path_keeps_the_parent_id(written: tuple[Path, dict[str, str | None]]) -> None:
    path, expected = written
    assert _parents(path) == expected
    store = SqliteEntityStore.open(f"sqlite://{path}")
    try:
        child = next(rt_id for rt_id, parent in expected.items() if parent)
        parent = expected[child]
        assert parent is not None
        other = next(p for p in expected.values() if p and p != parent)
        old = StoredAssociation(PARENT_ROLE, child, METER, parent, BUILDING)
        new = StoredAssociation(PARENT_ROLE, child, METER, other, BUILDING)
        store.apply(WriteBatch(add_associations=[new]))
        assert _parents(path)[child] == MANY_PARENTS  # two links: the column stands aside
        sql = compile_aggregation(store, BY_PARENT)[0]
        assert "associations" in sql
        store.apply(WriteBatch(remove_associations=[old]))
        assert _parents(path)[child] == other
        store.apply(WriteBatch(erase=[other]))
        orphaned = {rt_id for rt_id, p in expected.items() if p == other} | {child}
        assert {rt_id for rt_id, p in _parents(path).items() if p is None} >= orphaned
    finally:
        store.close()


def test_parent_aggregation_joins_by_the_column(tmp_path: Path) -> None:
    store = SqliteEntityStore.open(f"sqlite://{tmp_path}/entities.db")
    try:
        sql = compile_aggregation(store, BY_PARENT)[0]
        name = store.create_aggregate_index(BY_PARENT)
        with store._connection() as conn:
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    finally:
        store.close()
    assert "parent_rt_id" in sql
    assert "associations" not in sql
    # the entity's key, then the parent id: the index hands rows over grouped
    assert ddl[0].index('"State"') < ddl[0].index("parent_rt_id") < ddl[0].index('"Power"')


def test_an_older_store_gets_the_column_when_it_opens(
    written: tuple[Path, dict[str, str | None]], caplog: pytest.LogCaptureFixture
) -> None:
    path, expected = written
    _old_layout(path)
    assert "parent_rt_id" not in _columns(path)
    with caplog.at_level(logging.INFO, logger="workbench.storage"):
        store = SqliteEntityStore.open(f"sqlite://{path}")
    try:
        assert _parents(path) == expected
        assert "parent ids 4 of 4" in caplog.text
        rows = [(r.keys, r.count) for r in store.aggregate(BY_PARENT).rows]
        assert rows == [((0, None), 1), ((0, "H0"), 2), ((1, "H1"), 2)]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sys_entities_parent'"
        ).fetchone()


def test_an_interrupted_migration_leaves_the_store_as_it_was(
    written: tuple[Path, dict[str, str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected = written
    _old_layout(path)
    steps: list[int] = []
    backfill = sqlite_schema._backfill

    def interrupted(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
        backfill(conn, rows)  # the first chunk is written, then the process "dies"
        steps.append(len(rows))
        if len(steps) == 2:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_schema, "_BACKFILL_CHUNK", 2)
    monkeypatch.setattr(sqlite_schema, "_backfill", interrupted)
    with pytest.raises(WorkbenchError, match="disk I/O error"):
        SqliteEntityStore.open(f"sqlite://{path}")
    assert steps == [2, 2]
    assert "parent_rt_id" not in _columns(path)  # rolled back with the rest
    monkeypatch.setattr(sqlite_schema, "_backfill", backfill)
    SqliteEntityStore.open(f"sqlite://{path}").close()
    assert _parents(path) == expected
