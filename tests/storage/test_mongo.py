"""The MongoDB entity store against a real MongoDB wire-protocol server (MongoDB or FerretDB).

Set ``WORKBENCH_TEST_MONGODB_URL`` (``.ci/ferretdb.sh`` starts a FerretDB and prints it); every
test gets its own database ``wbtest_<hex>``, dropped afterwards.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect

from workbench.errors import BackendUnavailable, Conflict, ValidationError
from workbench.query.model import Condition, EntityQuery, Operator, SortKey, TextSearch
from workbench.storage import mongo, mongo_errors
from workbench.storage.backends import open_entity_store
from workbench.storage.base import MetaWrite, WriteBatch
from workbench.storage.mongo import MongoEntityStore, decode_datetime, encode_datetime
from workbench.testing.entity_store_contract import (
    EntityStoreContract,
    attr,
    insert,
    link,
    make_entity,
    snapshot,
    updated,
)
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration


def _with_database(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="module")
def server_url() -> str:
    return require_server_url(
        "WORKBENCH_TEST_MONGODB_URL", "MongoDB wire-protocol server (MongoDB or FerretDB)"
    )


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    """The URL of a fresh database, dropped after the test."""
    url = _with_database(server_url, f"wbtest_{uuid.uuid4().hex}")
    yield url
    MongoEntityStore.open(url).drop()


@pytest.fixture
def mongo_store(database_url: str) -> Iterator[MongoEntityStore]:
    store = MongoEntityStore.open(database_url)
    yield store
    store.close()


def _client(server_url: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(server_url, serverSelectionTimeoutMS=5000)


def _is_ferretdb(server_url: str) -> bool:
    with _client(server_url) as client:
        return "ferretdbVersion" in client.admin.command("buildInfo")


class TestMongoEntityStore(EntityStoreContract):
    @pytest.fixture
    def store(self, mongo_store: MongoEntityStore) -> MongoEntityStore:
        return mongo_store


# --- opening ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_url_without_database_is_rejected_naming_the_url() -> None:
    with pytest.raises(ValidationError, match=r"mongodb://127\.0\.0\.1:1/.*names no database"):
        MongoEntityStore.open("mongodb://127.0.0.1:1/")


def test_malformed_url_is_rejected() -> None:
    with pytest.raises(ValidationError, match="not a valid MongoDB URL"):
        MongoEntityStore.open("mongodb://host:notaport/db")


def test_unreachable_server_is_backend_unavailable_quickly() -> None:
    url = f"mongodb://wb:s3cret@127.0.0.1:{_free_port()}/tenant"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        MongoEntityStore.open(url, serverSelectionTimeoutMS=300)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "127.0.0.1" in message
    assert "/tenant" in message
    assert "s3cret" not in message


def test_registry_opens_mongodb_urls(database_url: str) -> None:
    store = open_entity_store(database_url)
    try:
        assert isinstance(store, MongoEntityStore)
        assert store.url == database_url
    finally:
        store.close()


def test_store_url_hides_the_password() -> None:
    assert mongo_errors._scrub_url("mongodb://u:pw@h:1/db?x=1") == "mongodb://u:***@h:1/db?x=1"
    assert mongo_errors._scrub_url("mongodb://h:1/db") == "mongodb://h:1/db"


def test_drop_removes_the_database(server_url: str) -> None:
    name = f"wbtest_{uuid.uuid4().hex}"
    store = MongoEntityStore.open(_with_database(server_url, name))
    insert(store, make_entity())
    store.drop()
    with _client(server_url) as client:
        assert name not in client.list_database_names()


# --- guarantees -------------------------------------------------------------------------------


def test_supports_transactions_matches_the_server(
    server_url: str, mongo_store: MongoEntityStore
) -> None:
    with _client(server_url) as client:
        hello = client.admin.command("hello")
    if _is_ferretdb(server_url):
        assert mongo_store.supports_transactions() is False
    else:
        assert mongo_store.supports_transactions() is ("setName" in hello)


@pytest.fixture
def populated(mongo_store: MongoEntityStore) -> dict[str, Any]:
    a = make_entity({"Serial": "S-1"})
    b = make_entity({"Serial": "S-2"})
    hall = make_entity({"Name": "Hall"}, ck_type_id="Test/Building")
    insert(mongo_store, a, b, hall)
    mongo_store.apply(
        WriteBatch(
            add_associations=[link(a, hall)],
            meta=[MetaWrite("libs", "one", {"v": 1})],
        )
    )
    return {"a": a, "b": b, "hall": hall}


def _big_batch(e: dict[str, Any]) -> tuple[WriteBatch, list[str]]:
    newcomer = make_entity({"Serial": "S-9"})
    batch = WriteBatch(
        inserts=[newcomer],
        updates=[(updated(e["b"], attributes={"Serial": "S-3"}), 1)],
        erase=[e["hall"].rt_id],
        add_associations=[link(newcomer, e["a"])],
        meta=[MetaWrite("libs", "one", {"v": 2}), MetaWrite("libs", "new", {"v": 3})],
    )
    return batch, [e["a"].rt_id, e["b"].rt_id, e["hall"].rt_id, newcomer.rt_id]


def test_a_write_failing_mid_batch_is_undone(
    mongo_store: MongoEntityStore,
    populated: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if mongo_store.supports_transactions():
        pytest.skip("the server runs transactions: the undo path is not used")
    batch, ids = _big_batch(populated)
    before = snapshot(mongo_store, ids, ["libs"])
    real_delete_many = Collection.delete_many
    calls = {"n": 0}

    def flaky_delete_many(self: Collection[Any], *args: Any, **kwargs: Any) -> Any:
        # the first delete of the batch (associations of the erased entity) comes after the
        # inserts and updates were written; the undo's own deletes go through
        calls["n"] += 1
        if calls["n"] == 1:
            raise AutoReconnect("connection reset (simulated)")
        return real_delete_many(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "delete_many", flaky_delete_many)
    with pytest.raises(BackendUnavailable, match="lost the connection"):
        mongo_store.apply(batch)
    monkeypatch.undo()
    assert snapshot(mongo_store, ids, ["libs"]) == before


def test_a_concurrent_change_between_validation_and_write_is_undone(
    mongo_store: MongoEntityStore,
    populated: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if mongo_store.supports_transactions():
        pytest.skip("the server runs transactions: the undo path is not used")
    batch, ids = _big_batch(populated)
    real_make = mongo._Plan.make
    b = populated["b"]
    interfered: list[bool] = []

    def make_then_interfere(*args: Any, **kwargs: Any) -> Any:
        plan = real_make(*args, **kwargs)
        if not interfered:
            interfered.append(True)
            # another writer updates b after this batch validated it
            change = updated(b, attributes={"Serial": "S-8"})
            mongo_store.apply(WriteBatch(updates=[(change, 1)]))
        return plan

    monkeypatch.setattr(mongo._Plan, "make", make_then_interfere)
    with pytest.raises(Conflict, match="another writer"):
        mongo_store.apply(batch)
    monkeypatch.undo()
    after = mongo_store.get_many(ids)
    assert set(after) == {populated["a"].rt_id, b.rt_id, populated["hall"].rt_id}
    assert after[b.rt_id].attributes == {"Serial": "S-8"}  # the other writer's change stays
    assert mongo_store.get_meta("libs", "one") == {"v": 1}
    assert mongo_store.get_meta("libs", "new") is None
    assert len(mongo_store.associations([populated["a"].rt_id], "outbound")) == 1


def test_uniqueness_is_enforced_by_the_adapter_without_partial_indexes(
    server_url: str, mongo_store: MongoEntityStore
) -> None:
    """On FerretDB (no partial indexes) uniqueness is the adapter's check alone."""
    from workbench.storage.base import IndexSpec

    mongo_store.ensure_indexes([IndexSpec("serial", "unique", ("Test/Meter",), (attr("Serial"),))])
    insert(mongo_store, make_entity({"Serial": "x"}), make_entity({}), make_entity({}))
    with pytest.raises(Conflict, match="serial"):
        insert(mongo_store, make_entity({"Serial": "x"}))
    if _is_ferretdb(server_url):
        indexes = mongo_store._entities.index_information()
        assert not indexes["wb_serial"].get("unique")


# --- encoding and query details ---------------------------------------------------------------


def test_datetimes_keep_microseconds_and_sort_in_time_order(
    mongo_store: MongoEntityStore,
) -> None:
    base = datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    stamps = [base + timedelta(microseconds=delta) for delta in (5, 1, 3)]
    entities = [make_entity({"At": stamp}, created=stamp) for stamp in stamps]
    insert(mongo_store, *entities)
    got = mongo_store.get_many([e.rt_id for e in entities])
    for entity in entities:
        assert got[entity.rt_id].attributes["At"] == entity.attributes["At"]
        assert got[entity.rt_id].rt_creation_datetime == entity.rt_creation_datetime
    page = mongo_store.find(EntityQuery(sort=(SortKey(attr("At")),)))
    assert [e.attributes["At"] for e in page.items] == sorted(stamps)
    between = Condition(attr("At"), Operator.BETWEEN, [stamps[1], stamps[2]])
    assert mongo_store.count(EntityQuery(filters=(between,))) == 2


def test_datetime_encoding_is_fixed_width_utc() -> None:
    value = datetime(1, 1, 1, tzinfo=UTC)
    assert encode_datetime(value) == "$dt:0001-01-01T00:00:00.000000Z"
    assert decode_datetime(encode_datetime(value)) == value
    assert decode_datetime("2024-01-01") is None
    with pytest.raises(ValidationError, match="timezone"):
        encode_datetime(datetime(2024, 1, 1))


def test_strings_that_look_like_encoded_values_round_trip(mongo_store: MongoEntityStore) -> None:
    tricky = {"A": "$dt:2024-01-01T00:00:00.000000Z", "B": "$$x", "C": "$", "D": "$dt:"}
    (entity,) = insert(mongo_store, make_entity(tricky))
    assert mongo_store.get_many([entity.rt_id])[entity.rt_id].attributes == tricky
    found = mongo_store.find(EntityQuery(filters=(Condition(attr("B"), Operator.EQUALS, "$$x"),)))
    assert [e.rt_id for e in found.items] == [entity.rt_id]
    for pattern in ("$$x", "$dt:%", "$$_", "$%"):
        like = EntityQuery(filters=(Condition(attr("B"), Operator.LIKE, pattern),))
        assert mongo_store.count(like) == (1 if pattern != "$dt:%" else 0), pattern
    dated = EntityQuery(filters=(Condition(attr("A"), Operator.LIKE, "$dt:2024%"),))
    assert mongo_store.count(dated) == 1


def test_like_and_text_search_never_match_datetimes(mongo_store: MongoEntityStore) -> None:
    insert(mongo_store, make_entity({"At": datetime(2024, 1, 1, tzinfo=UTC)}))
    for condition in (
        Condition(attr("At"), Operator.LIKE, "%2024%"),
        Condition(attr("At"), Operator.MATCH_REG_EX, "2024"),
        TextSearch("2024", (attr("At"),)),
    ):
        assert mongo_store.count(EntityQuery(filters=(condition,))) == 0


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a.c", {"a.c"}),
        ("1+1%", {"1+1=2"}),
        ("(x)|[y]", {"(x)|[y]"}),
        ("%\\d%", {"back\\d"}),
        ("line", set()),  # anchored: "line\n" does not match
        ("line%", {"line\n"}),
        ("^$", {"^$"}),
        ("% #%", {"a #b"}),
    ],
)
def test_like_escapes_regex_syntax(
    mongo_store: MongoEntityStore, pattern: str, expected: set[str]
) -> None:
    names = ["a.c", "abc", "1+1=2", "11=2", "(x)|[y]", "x", "back\\d", "back7", "line\n", "^$"]
    names.append("a #b")
    insert(mongo_store, *(make_entity({"Name": name}) for name in names))
    query = EntityQuery(filters=(Condition(attr("Name"), Operator.LIKE, pattern),))
    assert {e.attributes["Name"] for e in mongo_store.find(query).items} == expected


def test_text_search_escapes_regex_syntax(mongo_store: MongoEntityStore) -> None:
    insert(mongo_store, make_entity({"Name": "a.b (c)"}), make_entity({"Name": "axb c"}))
    query = EntityQuery(filters=(TextSearch(".B (", (attr("Name"),)),))
    assert [e.attributes["Name"] for e in mongo_store.find(query).items] == ["a.b (c)"]


def test_values_the_server_cannot_store_are_validation_errors(
    mongo_store: MongoEntityStore,
) -> None:
    with pytest.raises(ValidationError):
        insert(mongo_store, make_entity({"Huge": 2**70}))
    with pytest.raises(ValidationError):
        insert(mongo_store, make_entity({"Naive": datetime(2024, 1, 1)}))
    with pytest.raises(ValidationError, match="JSON"):
        mongo_store.put_meta("libs", "bad", {"x": {1, 2}})
    assert mongo_store.count(EntityQuery(include_archived=True)) == 0


def test_meta_documents_may_use_any_keys(mongo_store: MongoEntityStore) -> None:
    document = {"a.b": 1, "$x": {"c.d": [datetime(2024, 1, 1, 0, 0, 0, 7, tzinfo=UTC)]}}
    mongo_store.put_meta("ns", "k.1", document)
    assert mongo_store.get_meta("ns", "k.1") == document
    assert mongo_store.list_meta("ns") == {"k.1": document}
