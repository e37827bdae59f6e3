"""The SQLite entity store: the shared contract plus what only SQLite has (file, WAL, threads)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workbench.errors import BackendUnavailable, Conflict, ValidationError
from workbench.query.model import (
    AssociationCondition,
    Condition,
    EntityQuery,
    Operator,
    SortKey,
    TextSearch,
)
from workbench.storage.backends import open_entity_store
from workbench.storage.base import IndexSpec, WriteBatch
from workbench.storage.sqlite import SqliteEntityStore
from workbench.testing.entity_store_contract import (
    METER,
    EntityStoreContract,
    attr,
    insert,
    make_entity,
)


class TestSqliteEntityStore(EntityStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteEntityStore]:
        store = SqliteEntityStore.open(f"sqlite://{tmp_path}/tenant/entities.db")
        yield store
        store.drop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "entities.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteEntityStore]:
    store = SqliteEntityStore.open(f"sqlite://{db_path}")
    yield store
    store.close()


def _raw(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


def test_open_creates_the_file_in_wal_mode(store: SqliteEntityStore, db_path: Path) -> None:
    assert db_path.is_file()
    assert _raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    tables = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"entities", "associations", "meta"} <= tables


def test_registry_opens_sqlite_urls(tmp_path: Path) -> None:
    with open_entity_store(f"sqlite://{tmp_path}/a.db") as store:
        assert isinstance(store, SqliteEntityStore)
        assert store.supports_transactions() is True
    with open_entity_store("sqlite:///:memory:") as memory:
        insert(memory, make_entity({"Name": "m"}))
        assert memory.count(EntityQuery()) == 1


@pytest.mark.parametrize("url", ["sqlite://relative.db", "sqlite:///x.db?mode=ro", "mongodb://x"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValidationError, match="sqlite:///"):
        SqliteEntityStore.open(url)


def test_unknown_option_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        SqliteEntityStore.open(f"sqlite://{tmp_path}/a.db", journal="off")


def test_data_and_indexes_survive_reopening(db_path: Path) -> None:
    spec = IndexSpec("serial", "unique", (METER,), (attr("Serial"),))
    with SqliteEntityStore.open(f"sqlite://{db_path}") as store:
        store.ensure_indexes([spec])
        (entity,) = insert(store, make_entity({"Serial": "S-1"}))
        store.put_meta("libs", "demo", {"v": 1})
    with SqliteEntityStore.open(f"sqlite://{db_path}") as store:
        assert store.get_many([entity.rt_id])[entity.rt_id] == entity
        assert store.get_meta("libs", "demo") == {"v": 1}
        with pytest.raises(Conflict, match=r"'serial'.*'S-1'"):
            insert(store, make_entity({"Serial": "S-1"}))


def test_drop_deletes_the_files(db_path: Path) -> None:
    store = SqliteEntityStore.open(f"sqlite://{db_path}")
    insert(store, make_entity())
    store.drop()
    assert not db_path.exists()
    assert not Path(f"{db_path}-wal").exists()
    assert not Path(f"{db_path}-shm").exists()


def test_a_closed_store_says_so(store: SqliteEntityStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(BackendUnavailable, match="closed"):
        store.get_many(["x"])


def test_datetimes_are_stored_as_marked_fixed_width_utc_text(
    store: SqliteEntityStore, db_path: Path
) -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    entity = make_entity({"At": at, "Text": "$dt:not a date", "List": [at]}, created=at)
    insert(store, entity)
    ((attributes, created),) = _raw(
        db_path, "SELECT attributes, rt_creation_datetime FROM entities"
    )
    assert json.loads(str(attributes)) == {
        "At": "$dt:2024-01-02T03:04:05.000006Z",
        "Text": "$$dt:not a date",
        "List": ["$dt:2024-01-02T03:04:05.000006Z"],
    }
    assert created == "2024-01-02T03:04:05.000006Z"
    assert store.get_many([entity.rt_id])[entity.rt_id].attributes == entity.attributes
    found = store.find(EntityQuery(filters=(Condition(attr("Text"), Operator.LIKE, "$dt:%"),)))
    assert [e.rt_id for e in found.items] == [entity.rt_id]


def test_naive_datetimes_are_rejected(store: SqliteEntityStore) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        insert(store, make_entity({"At": datetime(2024, 1, 1)}))
    with pytest.raises(ValidationError, match="timezone"):
        store.find(
            EntityQuery(filters=(Condition(attr("At"), Operator.LESS_THAN, datetime(2024, 1, 1)),))
        )


def test_concurrent_threads_write_and_read(store: SqliteEntityStore) -> None:
    errors: list[BaseException] = []
    per_thread, batches = 40, 10

    def work(n: int) -> None:
        try:
            for b in range(batches):
                entities = [
                    make_entity({"Thread": n, "I": b * per_thread + i}) for i in range(per_thread)
                ]
                store.apply(WriteBatch(inserts=entities))
                query = EntityQuery(filters=(Condition(attr("Thread"), Operator.EQUALS, n),))
                assert store.count(query) == (b + 1) * per_thread
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count(EntityQuery()) == 6 * batches * per_thread


def test_a_second_store_on_the_same_file_sees_committed_writes(
    store: SqliteEntityStore, db_path: Path
) -> None:
    with SqliteEntityStore.open(f"sqlite://{db_path}") as other:
        (entity,) = insert(other, make_entity({"Name": "from other"}))
    assert entity.rt_id in store.get_many([entity.rt_id])


_HOSTILE = [
    "x'); DROP TABLE entities; --",
    "' OR '1'='1",
    '" OR 1=1 --',
    "%' OR 1=1 --",
    "\\'; DELETE FROM meta; --",
]


@pytest.mark.parametrize("value", _HOSTILE)
def test_hostile_values_are_only_data(store: SqliteEntityStore, value: str) -> None:
    decoy, target = insert(store, make_entity({"Name": "decoy"}), make_entity({"Name": value}))
    store.put_meta("ns", "k", {"v": 1})
    for condition in (
        Condition(attr("Name"), Operator.EQUALS, value),
        Condition(attr("Name"), Operator.IN, [value]),
        Condition(attr("Name"), Operator.MATCH_REG_EX, "^" + __import__("re").escape(value) + "$"),
    ):
        found = store.find(EntityQuery(filters=(condition,)))
        assert [e.rt_id for e in found.items] == [target.rt_id]
    store.find(EntityQuery(filters=(TextSearch(value, (attr("Name"),)),)))
    store.find(EntityQuery(filters=(AssociationCondition(value, "outbound"),)))
    store.find(EntityQuery(rt_ids=(value,)))
    assert store.get_by_well_known_name(value) is None
    assert store.get_meta(value, value) is None
    assert store.count(EntityQuery()) == 2
    assert store.get_meta("ns", "k") == {"v": 1}
    assert decoy.rt_id in store.get_many([decoy.rt_id])


@pytest.mark.parametrize(
    "key", ["Name') OR 1=1 --", 'Name" OR 1=1', "Na me", "a.b", "$x", "", "Name'", "x]"]
)
def test_hostile_path_keys_are_rejected(store: SqliteEntityStore, key: str) -> None:
    insert(store, make_entity({"Name": "a"}))
    path = ("attributes", key)
    for query in (
        EntityQuery(filters=(Condition(path, Operator.EQUALS, "a"),)),
        EntityQuery(filters=(Condition(path, Operator.ANY_LIKE, "a"),)),
        EntityQuery(filters=(TextSearch("a", (path,)),)),
        EntityQuery(sort=(SortKey(path),)),
    ):
        with pytest.raises(ValidationError, match="key"):
            store.find(query)
    with pytest.raises(ValidationError):
        store.ensure_indexes([IndexSpec("bad", "ascending", (METER,), (path,))])
    assert store.count(EntityQuery()) == 1


@pytest.mark.parametrize("type_id", ["Test/Meter') OR 1=1 --", "Test/Meter'", "a b"])
def test_hostile_type_ids_are_rejected(store: SqliteEntityStore, type_id: str) -> None:
    with pytest.raises(ValidationError, match="type id"):
        store.find(EntityQuery(type_ids=(type_id,)))
    with pytest.raises(ValidationError, match="type id"):
        insert(store, make_entity(ck_type_id=type_id))
    with pytest.raises(ValidationError, match="type id"):
        store.ensure_indexes([IndexSpec("x", "ascending", (type_id,), (attr("Name"),))])


def test_index_names_are_quoted(store: SqliteEntityStore, db_path: Path) -> None:
    spec = IndexSpec('odd "name"; DROP TABLE entities', "unique", (METER,), (attr("Serial"),))
    store.ensure_indexes([spec])
    insert(store, make_entity({"Serial": 1}))
    with pytest.raises(Conflict, match="DROP TABLE"):
        insert(store, make_entity({"Serial": 1}))
    names = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert 'mdl_odd "name"; DROP TABLE entities' in names
    store.ensure_indexes([])
    names = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert not any(name.startswith("mdl_") for name in names)


def test_indexed_filters_and_sorts_use_the_model_index(store: SqliteEntityStore) -> None:
    store.ensure_indexes(
        [
            IndexSpec("state", "ascending", (METER, "Test/SubMeter"), (attr("State"),)),
            IndexSpec("serial", "unique", (METER,), (attr("Serial"),)),
        ]
    )
    # enough rows that the store refreshes the planner statistics
    insert(store, *(make_entity({"State": "abcab"[i % 5], "Serial": i}) for i in range(1500)))
    by_state = EntityQuery(
        type_ids=(METER,),
        filters=(Condition(attr("State"), Operator.EQUALS, "a"),),
        first=100,
    )
    plan = " | ".join(store.explain(by_state))
    assert "mdl_state" in plan
    assert "TEMP B-TREE" not in plan  # (State, rtId) index gives the order: no sort step
    page = store.find(by_state)
    assert len(page.items) == 100
    assert page.has_next_page
    after = store.find(EntityQuery(type_ids=(METER,), sort=(SortKey(attr("State")),), first=2))
    deep = EntityQuery(
        type_ids=(METER, "Test/SubMeter"),
        sort=(SortKey(attr("State")),),
        first=2,
        after=after.end_cursor,
    )
    assert "mdl_state" in " | ".join(store.explain(deep))
    by_serial = EntityQuery(
        type_ids=(METER,), filters=(Condition(attr("Serial"), Operator.EQUALS, 3),)
    )
    assert "mdl_serial" in " | ".join(store.explain(by_serial))


def test_unique_index_over_existing_duplicates_changes_nothing(
    store: SqliteEntityStore, db_path: Path
) -> None:
    insert(store, make_entity({"Serial": 1}), make_entity({"Serial": 1}))
    before = _raw(db_path, "SELECT name, sql FROM sqlite_master ORDER BY name")
    with pytest.raises(Conflict, match=r"'serial'.*1"):
        store.ensure_indexes([IndexSpec("serial", "unique", (METER,), (attr("Serial"),))])
    assert _raw(db_path, "SELECT name, sql FROM sqlite_master ORDER BY name") == before
