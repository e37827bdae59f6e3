"""The CrateDB stream store.

No CrateDB server can be installed on these machines (ARCHITECTURE.md, "Real servers in tests"),
so the guarantees come in three kinds, named by the tests:

- ``test_crate_sql_grammar_*``: every statement the adapter emits, over a scenario touching every
  operation, parses with ``cratedb_sqlparse`` (CrateDB's own ANTLR grammar). This proves syntax,
  not semantics: it does not prove that a function (``min_by``, ``max_by``) exists in the server
  version used, nor what a statement does.
- ``test_crate_wiring_*``: URL parsing, the keyword arguments given to ``crate.client.connect``,
  parameters and bulk parameters as the real ``crate.client`` Connection/Cursor send them, and the
  mapping of result rows to Arrow. A recording stand-in replaces only the HTTP client object that
  ``crate.client.connect(client=...)`` accepts; answers it gives are canned, not CrateDB's.
- ``TestCrateLiveContract``: the full stream-store contract suite against a live CrateDB. It runs
  only when ``WORKBENCH_TEST_CRATEDB_URL`` is set and skips otherwise, also under CI (the design
  decision "CrateDB: none obtainable here"); only these tests prove behaviour on CrateDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from crate import client as crate_client
from cratedb_sqlparse import sqlparse

from workbench.errors import Conflict, ValidationError
from workbench.storage.backends import open_stream_store
from workbench.storage.base import StreamAggregation, StreamColumn, StreamQuery
from workbench.storage.crate import CrateStreamStore, parse_crate_url
from workbench.testing.stream_store_contract import (
    AGGREGATE_FUNCTIONS,
    COLUMNS,
    StreamStoreContract,
    T,
    at,
    points,
)

Responder = Callable[[str, Any, Any], dict[str, Any] | None]


class RecordingClient:
    """Stands where ``crate.client.http.Client`` stands: records each request, answers canned."""

    active_servers = ["http://crate.test:4200"]

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[tuple[str, Any, Any]] = []
        self.responder = responder
        self.tables: dict[str, tuple[str, str]] = {}

    def server_infos(self, server: str) -> tuple[str, str, str]:
        return server, "crate-test", "5.10.0"

    def sql(self, stmt: str, parameters: Any = None, bulk_parameters: Any = None) -> dict[str, Any]:
        self.requests.append((stmt, parameters, bulk_parameters))
        if self.responder is not None:
            answer = self.responder(stmt, parameters, bulk_parameters)
            if answer is not None:
                return answer
        if bulk_parameters is not None:
            return {
                "cols": [],
                "results": [{"rowcount": 1} for _ in bulk_parameters],
                "duration": 1,
            }
        # remember wb_stream_tables writes so later lookups find the table
        if "wb_stream_tables" in stmt and stmt.startswith("INSERT"):
            name, physical, columns = parameters
            self.tables[name] = (physical, columns)
        elif "wb_stream_tables" in stmt and stmt.startswith("UPDATE"):
            columns, name = parameters
            self.tables[name] = (self.tables[name][0], columns)
        if stmt.startswith("SELECT") and 'FROM "tenant_a".wb_stream_tables' in stmt:
            rows = [
                [name, physical, columns]
                for name, (physical, columns) in self.tables.items()
                if not parameters or parameters[0] == name
            ]
            return {"cols": ["name", "physical", "columns"], "rows": rows, "rowcount": len(rows)}
        if stmt.startswith("SELECT"):
            return {"cols": ["x"], "rows": [], "rowcount": 0}
        return {"cols": [], "rows": [], "rowcount": 1, "duration": 1}

    def close(self) -> None:
        pass

    @property
    def statements(self) -> list[str]:
        return [stmt for stmt, _, _ in self.requests]


def recording_store(
    responder: Responder | None = None, url: str = "crate://crate.test:4200/tenant_a"
) -> tuple[CrateStreamStore, RecordingClient, dict[str, Any]]:
    recorder = RecordingClient(responder)
    seen: dict[str, Any] = {}

    def connect(**kwargs: Any) -> Any:
        seen.update(kwargs)
        # the real crate client Connection (and its Cursor), talking to the recorder
        return crate_client.connect(client=recorder)

    store = CrateStreamStore.open(url, connect=connect)
    return store, recorder, seen


def exercise(store: CrateStreamStore) -> None:
    """Every operation of the port once (and a few variants)."""
    store.ensure_table(T, COLUMNS)
    store.ensure_table(T, (*COLUMNS, StreamColumn("Current", "double")))
    store.tables()
    store.append(
        T,
        points(
            [
                {"rtId": "a" * 24, "timestamp": at(0), "Voltage": 1.0, "Seen": at(5)},
                {"rtId": "a" * 24, "timestamp": at(0), "Count": 3},
            ]
        ),
    )
    store.append(
        T,
        pa.table(
            {"rtId": ["a" * 24], "timestamp": pa.array([at(1)], pa.timestamp("us", tz="UTC"))}
        ),
    )
    store.read(T, StreamQuery())
    store.read(
        T, StreamQuery(start=at(0), end=at(10), rt_ids=("a" * 24,), columns=("Voltage",), limit=5)
    )
    for descending in (False, True):
        from workbench.storage.arrow import encode_stream_cursor

        cursor = encode_stream_cursor(descending, 1_000, "a" * 24)
        store.read(T, StreamQuery(descending=descending, limit=5, after=cursor))
    store.aggregate(T, StreamAggregation(at(0), at(60), 15_000_000, AGGREGATE_FUNCTIONS))
    store.aggregate(
        T,
        StreamAggregation(
            at(0), at(60), 1_000_000, ("first",), rt_ids=("b" * 24,), columns=("State",)
        ),
    )
    store.delete(T, at(0), at(1), rt_ids=["a" * 24])
    store.delete(T)
    store.put_meta("retention", T, {"keep": "90d"})
    store.get_meta("retention", T)
    store.list_meta("retention")
    store.put_meta("retention", T, None)
    store.drop_table(T)
    store.drop()


# -- grammar -------------------------------------------------------------------------------------


def test_crate_sql_grammar_every_emitted_statement_parses() -> None:
    store, recorder, _ = recording_store()
    exercise(store)
    kinds = set()
    assert len(recorder.statements) > 20
    for statement in recorder.statements:
        parsed = sqlparse(statement, raise_exception=True)
        assert len(parsed) == 1, statement
        assert parsed[0].exception is None, statement
        kinds.add(parsed[0].type)
    assert {"CREATE", "ALTER", "INSERT", "SELECT", "DELETE", "UPDATE", "DROP", "REFRESH"} <= kinds


def test_crate_sql_grammar_check_rejects_broken_sql() -> None:
    """The grammar check has teeth: a statement CrateDB would refuse to parse is caught."""
    from cratedb_sqlparse import ParsingException

    with pytest.raises(ParsingException):
        sqlparse(
            'INSERT INTO "s"."t" ("a") VALUES (?) ON DUPLICATE KEY UPDATE a = 1',
            raise_exception=True,
        )


# -- wiring --------------------------------------------------------------------------------------


def test_crate_wiring_url_to_connect_arguments() -> None:
    kwargs, schema, safe = parse_crate_url(
        "crate://db.example:4201/acme_streams?user=alice&password=s%40cret&ssl=true&timeout=5"
    )
    assert kwargs == {
        "servers": "https://db.example:4201",
        "username": "alice",
        "password": "s@cret",
        "schema": "acme_streams",
        "timeout": 5.0,
    }
    assert schema == "acme_streams"
    assert safe == "crate://db.example:4201/acme_streams"
    assert parse_crate_url("crate://bob:pw@h/x")[0]["username"] == "bob"
    assert parse_crate_url("crate://h")[1] == "doc"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("crate:///schema", "crate://host"),
        ("crate://h:4200/Bad-Schema", "schema"),
        ("crate://h:4200/s?colour=red", "unknown parameters"),
    ],
)
def test_crate_wiring_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_crate_url(url)


def test_crate_wiring_registry_opens_with_injected_connect() -> None:
    recorder = RecordingClient()
    store = open_stream_store(
        "crate://crate.test:4200/tenant_a",
        connect=lambda **_: crate_client.connect(client=recorder),
    )
    assert isinstance(store, CrateStreamStore)
    assert store.url == "crate://crate.test:4200/tenant_a"
    assert any("wb_stream_meta" in s for s in recorder.statements)
    store.close()


def test_crate_wiring_unreachable_server_is_backend_unavailable() -> None:
    from workbench.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=r"cannot connect|unreachable"):
        CrateStreamStore.open("crate://127.0.0.1:9/tenant_a?timeout=0.2")


def test_crate_wiring_create_table_ddl_and_column_types() -> None:
    store, recorder, seen = recording_store()
    assert seen == {
        "servers": "http://crate.test:4200",
        "username": None,
        "password": None,
        "schema": "tenant_a",
    }
    store.ensure_table(T, COLUMNS)
    create = next(
        s for s in recorder.statements if s.startswith('CREATE TABLE IF NOT EXISTS "tenant_a"."ts_')
    )
    assert create == (
        'CREATE TABLE IF NOT EXISTS "tenant_a"."ts_test_streams__meter" ("rtId" TEXT NOT NULL, '
        '"timestamp" BIGINT NOT NULL, "Voltage" DOUBLE PRECISION, "Count" BIGINT, "On" BOOLEAN, '
        '"State" TEXT, "Seen" BIGINT, PRIMARY KEY ("rtId", "timestamp"))'
    )
    assert store.table(T).columns == COLUMNS  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="never retyped"):
        store.ensure_table(T, (StreamColumn("Voltage", "varchar"),))
    store.close()


def test_crate_wiring_append_sends_bulk_upsert_with_microseconds() -> None:
    store, recorder, _ = recording_store()
    store.ensure_table(T, COLUMNS)
    recorder.requests.clear()
    written = store.append(
        T,
        points(
            [
                {
                    "rtId": "a" * 24,
                    "timestamp": datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
                    "Voltage": 1.5,
                    "Seen": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
                },
                {"rtId": "b" * 24, "timestamp": at(1), "Voltage": None},
            ],
            COLUMNS,
        ),
    )
    assert written == 2
    stmt, params, bulk = recorder.requests[1]
    assert params is None
    # new points: a plain bulk INSERT, no upsert at all
    assert stmt == (
        'INSERT INTO "tenant_a"."ts_test_streams__meter" ("rtId", "timestamp", "Voltage", "Seen") '
        "VALUES (?, ?, ?, ?)"
    )
    assert not any("ON CONFLICT" in s for s in recorder.statements)
    assert bulk == [
        ["a" * 24, 1_767_225_600_123_456, 1.5, 1_000_000],
        ["b" * 24, 1_767_225_601_000_000, None, None],
    ]
    assert recorder.statements[-1] == 'REFRESH TABLE "tenant_a"."ts_test_streams__meter"'
    store.close()


def test_crate_wiring_rows_with_a_stored_key_are_upserted() -> None:
    def duplicate_second(stmt: str, params: Any, bulk: Any) -> dict[str, Any] | None:
        if bulk is not None and "ON CONFLICT" not in stmt:
            return {"cols": [], "results": [{"rowcount": 1}, {"rowcount": -2}, {"rowcount": 1}]}
        return None

    store, recorder, _ = recording_store(duplicate_second)
    store.ensure_table(T, COLUMNS)
    recorder.requests.clear()
    rows = [{"rtId": "a" * 24, "timestamp": at(i), "Count": i} for i in range(3)]
    assert store.append(T, points(rows)) == 3
    (insert, _, first), (upsert, _, retried) = (r for r in recorder.requests if r[2] is not None)
    assert "ON CONFLICT" not in insert
    assert len(first) == 3
    assert upsert == (
        f'{insert} ON CONFLICT ("rtId", "timestamp") DO UPDATE SET '
        '"Count" = coalesce(excluded."Count", "Count")'
    )
    assert retried == [first[1]]  # only the rejected row, as it was
    store.close()


def test_crate_wiring_failed_bulk_rows_are_reported() -> None:
    def fail(stmt: str, params: Any, bulk: Any) -> dict[str, Any] | None:
        if bulk is not None:  # rejected by the INSERT and again by the upsert
            return {"cols": [], "results": [{"rowcount": 1}, {"rowcount": -2}][-len(bulk) :]}
        return None

    store, _, _ = recording_store(fail)
    store.ensure_table(T, COLUMNS)
    with pytest.raises(Exception, match="rejected 1 point"):
        store.append(
            T, points([{"rtId": "a" * 24, "timestamp": at(i), "Count": i} for i in range(2)])
        )
    store.close()


def test_crate_wiring_read_maps_rows_to_arrow_and_cursor() -> None:
    micros = 1_767_225_600_000_001

    def answer(stmt: str, params: Any, bulk: Any) -> dict[str, Any] | None:
        if stmt.startswith('SELECT "rtId", "timestamp"'):
            return {
                "cols": ["rtId", "timestamp", "Voltage", "Seen"],
                "rows": [
                    ["a" * 24, micros, 2.5, 0],
                    ["b" * 24, micros + 1, None, None],
                    ["c" * 24, micros + 2, 1.0, None],
                ],
                "rowcount": 3,
            }
        return None

    store, recorder, _ = recording_store(answer)
    store.ensure_table(T, COLUMNS)
    page = store.read(
        T,
        StreamQuery(start=at(0), rt_ids=("a" * 24, "b" * 24), columns=("voltage", "seen"), limit=2),
    )
    stmt, params, _ = recorder.requests[-1]
    assert stmt == (
        'SELECT "rtId", "timestamp", "Voltage", "Seen" FROM "tenant_a"."ts_test_streams__meter" '
        'WHERE "timestamp" >= ? AND "rtId" = ANY(?) ORDER BY "timestamp" ASC, "rtId" ASC LIMIT 3'
    )
    assert params == [1_767_225_600_000_000, ["a" * 24, "b" * 24]]
    assert page.has_next_page
    assert page.table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert page.table.to_pylist() == [
        {
            "rtId": "a" * 24,
            "timestamp": datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            "Voltage": 2.5,
            "Seen": datetime(1970, 1, 1, tzinfo=UTC),
        },
        {
            "rtId": "b" * 24,
            "timestamp": datetime(2026, 1, 1, 0, 0, 0, 2, tzinfo=UTC),
            "Voltage": None,
            "Seen": None,
        },
    ]
    store.read(T, StreamQuery(columns=("Voltage", "Seen"), limit=2, after=page.end_cursor))
    stmt, params, _ = recorder.requests[-1]
    assert (
        'WHERE "timestamp" >= ? AND ("timestamp" > ? OR ("timestamp" = ? AND "rtId" > ?))' in stmt
    )
    assert params == [micros + 1, micros + 1, micros + 1, "b" * 24]
    store.close()


def test_crate_wiring_aggregate_maps_buckets() -> None:
    def answer(stmt: str, params: Any, bulk: Any) -> dict[str, Any] | None:
        if stmt.startswith('SELECT "rtId", "timestamp" - '):
            return {
                "cols": ["rtId", "bucket", "Count_avg", "Count_count", "Count_last"],
                "rows": [["a" * 24, 1_767_225_600_000_000, 1.5, 2, 7]],
                "rowcount": 1,
            }
        return None

    store, recorder, _ = recording_store(answer)
    store.ensure_table(T, COLUMNS)
    result = store.aggregate(
        T,
        StreamAggregation(
            at(0), at(900), 900_000_000, ("avg", "count", "last"), columns=("Count",)
        ),
    )
    stmt = recorder.statements[-1]
    assert '"timestamp" - ((("timestamp" % 900000000) + 900000000) % 900000000) AS bucket' in stmt
    assert 'max_by("Count", "timestamp") FILTER (WHERE "Count" IS NOT NULL) AS "Count_last"' in stmt
    assert result.to_pylist() == [
        {
            "rtId": "a" * 24,
            "bucket": datetime(2026, 1, 1, tzinfo=UTC),
            "Count_avg": 1.5,
            "Count_count": 2,
            "Count_last": 7,
        }
    ]
    store.close()


def test_crate_wiring_sql_errors_become_workbench_errors() -> None:
    from crate.client.exceptions import ProgrammingError

    def refuse(stmt: str, params: Any, bulk: Any) -> dict[str, Any] | None:
        if stmt.startswith("DELETE"):
            raise ProgrammingError("SQLParseException[line 1: mismatched input]")
        return None

    store, _, _ = recording_store(refuse)
    store.ensure_table(T, COLUMNS)
    with pytest.raises(ValidationError, match="CrateDB refused"):
        store.delete(T)
    store.close()


# -- live ----------------------------------------------------------------------------------------

CRATEDB_URL = os.environ.get("WORKBENCH_TEST_CRATEDB_URL", "").strip()


@pytest.mark.skipif(
    not CRATEDB_URL,
    reason="no CrateDB obtainable on this machine: set WORKBENCH_TEST_CRATEDB_URL",
)
class TestCrateLiveContract(StreamStoreContract):
    """The contract suite on a live CrateDB (a fresh schema per test, dropped afterwards)."""

    @pytest.fixture
    def stream_store(self) -> Iterator[CrateStreamStore]:
        base = CRATEDB_URL.split("?", 1)
        schema = f"wbtest_{uuid.uuid4().hex[:12]}"
        head = base[0].rstrip("/")
        head = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
        url = f"{head}/{schema}" + (f"?{base[1]}" if len(base) > 1 else "")
        store = CrateStreamStore.open(url)
        yield store
        store.drop()
