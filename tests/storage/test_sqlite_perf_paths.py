"""The SQLite store's bulk-write shortcuts keep their results: JSON encoding, partial-index DDL
(and its upgrade from older files), the light type lookup and the page size of new files."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.query.model import Condition, EntityQuery, Operator
from workbench.storage.base import IndexSpec, WriteBatch
from workbench.storage.sqlite import SqliteEntityStore, decode_json, encode_json
from workbench.testing.entity_store_contract import METER, attr, insert, make_entity

SUB = "Test/SubMeter"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "entities.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteEntityStore]:
    store = SqliteEntityStore.open(f"sqlite://{db_path}")
    yield store
    store.close()


def _raw(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


# --- JSON -------------------------------------------------------------------------------------


def _reference(document: Any) -> str:
    """encode_json as it was written first: json.dumps plus the marker rules."""

    def tree(value: Any) -> Any:
        if isinstance(value, str):
            return "$" + value if value.startswith(("$$", "$dt:")) else value
        if isinstance(value, dict):
            return {str(k): tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [tree(v) for v in value]
        if isinstance(value, datetime):
            text = value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
            return "$dt:" + text
        return value

    return json.dumps(tree(document), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return rng.choice(["plain", "$dt:not a date", "$$x", "$", 'ü€ "q" \\', ""])
    if kind == 1:
        return rng.randint(-(2**63), 2**63)
    if kind == 2:
        return rng.random() * 10 ** rng.randint(-5, 20)
    if kind == 3:
        return rng.choice([True, False, None])
    if kind in (4, 5):
        offset = timezone(timedelta(minutes=rng.randrange(-600, 600, 15)))
        moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8))
        return moment.astimezone(offset if kind == 5 else UTC)
    if kind == 6:
        return "x" * rng.randrange(3)
    if kind in (7, 8):
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_encode_json_matches_the_reference_encoding() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        document = {f"a{i}": _random_value(rng) for i in range(rng.randrange(1, 6))}
        text = encode_json(document)
        assert text == _reference(document)
        assert encode_json(decode_json(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        '{"big":123456789012345678901234567890,"n":-9223372036854775808}',
        '{"s":"\\ud800 lone surrogate","u":"\\u00fc"}',
        '{"f":1e400,"g":-1e400}',
        '{"a":1,"a":2,"nested":[{"x":[1.5,null,true]}]}',
        '{"id":"serial 12345678901234567890","v":0.1}',
        '{"u64":18446744073709551615,"over":18446744073709551616,"under":-9223372036854775809}',
        '{"deep":{"l":[1,[2,{"x":99999999999999999999}]]},"ü€":"١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠"}',
        '{"edge":9223372036854775807,"low":-9223372036854775808,"f":9.3e18}',
    ],
)
def test_decode_json_reads_what_json_reads(text: str) -> None:
    # decode_json reads with orjson where it gives json's result, else with json
    decoded = decode_json(text)
    assert decoded == json.loads(text)
    assert _types(decoded) == _types(json.loads(text))


def _types(value: Any) -> Any:
    """``value`` with every leaf replaced by its type (an int read as a float shows)."""
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


def test_decode_json_reads_a_lone_surrogate_in_the_text_as_json_does() -> None:
    text = '{"s":"\ud800"}'  # the code point itself, not its JSON escape
    assert decode_json(text) == json.loads(text) == {"s": "\ud800"}


def test_encode_json_errors_stay_precise() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValidationError, match="Circular reference"):
        encode_json(cyclic)
    with pytest.raises(ValidationError, match="has no timezone"):
        encode_json({"at": datetime(2024, 1, 1)})
    with pytest.raises(ValidationError, match="not JSON compliant"):
        encode_json({"x": float("nan")})
    with pytest.raises(ValidationError, match=r"set \{1\} is not JSON-serialisable"):
        encode_json({"x": {1}})
    # the thread's datetime count starts afresh after a failure
    assert encode_json({"a": "$dt:x", "b": datetime(2024, 1, 1, tzinfo=UTC)}) == (
        '{"a":"$$dt:x","b":"$dt:2024-01-01T00:00:00.000000Z"}'
    )


def test_batch_stamps_are_written_per_entity(store: SqliteEntityStore) -> None:
    first = datetime(2024, 1, 1, tzinfo=UTC)
    second = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    a = make_entity({"Name": "a"}, created=first)
    b = make_entity({"Name": "b"}, created=second)
    insert(store, a, b)
    found = store.get_many([a.rt_id, b.rt_id])
    assert found[a.rt_id].rt_creation_datetime == first
    assert found[b.rt_id].rt_creation_datetime == second


# --- partial model indexes ------------------------------------------------------------------


def _specs() -> list[IndexSpec]:
    return [
        IndexSpec("state", "ascending", (METER, SUB, "Test/Third"), (attr("State"),)),
        IndexSpec("serial", "unique_not_deleted", (METER,), (attr("Serial"),)),
    ]


def test_partial_index_terms_are_equalities(store: SqliteEntityStore, db_path: Path) -> None:
    store.ensure_indexes(_specs())
    ddl = dict(_raw(db_path, "SELECT name, sql FROM sqlite_master WHERE name LIKE 'mdl_%'"))
    assert ddl["mdl_state"].endswith(
        "WHERE (ck_type_id = 'Test/Meter' OR ck_type_id = 'Test/SubMeter' "
        "OR ck_type_id = 'Test/Third')"
    )
    assert ddl["mdl_serial"].endswith("WHERE ck_type_id = 'Test/Meter' AND archived = 0")
    insert(store, *(make_entity({"State": "abcab"[i % 5], "Serial": i}) for i in range(1500)))
    for type_ids in ((METER,), (METER, SUB), (METER, SUB, "Test/Third")):
        query = EntityQuery(
            type_ids=type_ids, filters=(Condition(attr("State"), Operator.EQUALS, "a"),), first=10
        )
        assert "mdl_state" in " | ".join(store.explain(query))
        assert len(store.find(query).items) == 10
    by_serial = EntityQuery(
        type_ids=(METER,), filters=(Condition(attr("Serial"), Operator.EQUALS, 3),)
    )
    assert "mdl_serial" in " | ".join(store.explain(by_serial))


def test_indexes_written_by_an_older_version_are_rebuilt_on_open(
    store: SqliteEntityStore, db_path: Path
) -> None:
    store.ensure_indexes(_specs())
    insert(store, *(make_entity({"State": "abcab"[i % 5], "Serial": i}) for i in range(1500)))
    store.close()
    # what the previous version wrote: IN lists
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("DROP INDEX mdl_state")
        conn.execute(
            'CREATE INDEX "mdl_state" ON entities (json_extract(attributes, \'$."State"\'), '
            "rt_id) WHERE ck_type_id IN ('Test/Meter', 'Test/SubMeter', 'Test/Third')"
        )
        conn.commit()
    reopened = SqliteEntityStore.open(f"sqlite://{db_path}")
    try:
        ddl = dict(_raw(db_path, "SELECT name, sql FROM sqlite_master WHERE name LIKE 'mdl_%'"))
        assert " IN (" not in ddl["mdl_state"]
        query = EntityQuery(
            type_ids=(METER,), filters=(Condition(attr("State"), Operator.EQUALS, "a"),), first=10
        )
        assert "mdl_state" in " | ".join(reopened.explain(query))
        assert len(reopened.find(query).items) == 10
    finally:
        reopened.close()


# --- the rest -----------------------------------------------------------------------------------


def test_entity_types_is_get_many_without_the_entity(store: SqliteEntityStore) -> None:
    live = make_entity({"Name": "a"})
    gone = make_entity({"Name": "b"}, ck_type_id=SUB)
    insert(store, live, gone)
    archived = store.get_many([gone.rt_id])[gone.rt_id]
    archived.archived = True
    store.apply(WriteBatch(updates=[(archived, None)]))
    ids = [live.rt_id, gone.rt_id, "ab" * 12]
    assert store.entity_types(ids) == {live.rt_id: METER, gone.rt_id: SUB}
    assert store.entity_types(ids, include_archived=False) == {live.rt_id: METER}
    assert store.entity_types([]) == {}


def test_new_files_use_16k_pages(store: SqliteEntityStore, db_path: Path) -> None:
    assert _raw(db_path, "PRAGMA page_size") == [(16384,)]
