"""The contract every :class:`~workbench.storage.base.StreamStore` adapter passes unchanged.

Subclass :class:`StreamStoreContract` in a test module and provide a ``stream_store`` fixture that
yields a fresh, empty store (and closes or drops it afterwards)::

    class TestDuckDBContract(StreamStoreContract):
        @pytest.fixture
        def stream_store(self, tmp_path):
            store = DuckDBStreamStore.open(f"duckdb:///{tmp_path / 's.duckdb'}")
            yield store
            store.close()
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from workbench.errors import Conflict, ValidationError, WorkbenchError
from workbench.storage.base import (
    AGGREGATE_FUNCTIONS,
    StreamAggregation,
    StreamColumn,
    StreamQuery,
    StreamStore,
)

__all__ = ["StreamStoreContract"]

T = "Test.Streams/Meter"
A = "0000000000000000000000a1"
B = "0000000000000000000000b2"
C = "0000000000000000000000c3"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = (
    StreamColumn("Voltage", "double"),
    StreamColumn("Count", "bigint"),
    StreamColumn("On", "boolean"),
    StreamColumn("State", "varchar"),
    StreamColumn("Seen", "timestamp"),
)


def points(rows: list[dict[str, Any]], columns: tuple[StreamColumn, ...] = COLUMNS) -> pa.Table:
    """An Arrow table of ``rows`` (dicts with rtId, timestamp and some of ``columns``)."""
    from workbench.storage.base import STREAM_ARROW_TYPES

    given = [c for c in columns if any(c.name in r for r in rows)]
    fields = [
        pa.field("rtId", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        *(pa.field(c.name, STREAM_ARROW_TYPES[c.type]) for c in given),
    ]
    data = {f.name: [r.get(f.name) for r in rows] for f in fields}
    return pa.table(data, schema=pa.schema(fields))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def series(store: StreamStore, n: int = 120, rt_ids: tuple[str, ...] = (A, B, C)) -> pd.DataFrame:
    """Write ``n`` seconds of points for each rtId (some values null) and return them as pandas."""
    store.ensure_table(T, COLUMNS)
    rng = np.random.default_rng(7)
    frames = []
    for i, rt_id in enumerate(rt_ids):
        voltage = rng.normal(230, 3, n)
        voltage[rng.random(n) < 0.1] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "rtId": rt_id,
                    "timestamp": pd.date_range(T0, periods=n, freq="1s", tz="UTC")
                    + pd.Timedelta(milliseconds=250 * i),
                    "Voltage": voltage,
                    "Count": np.arange(n, dtype="int64") * (i + 1),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("timestamp"),
        "timestamp",
        table.column("timestamp").cast(pa.timestamp("us", tz="UTC")),
    )
    assert store.append(T, table) == len(frame)
    return frame


def read_all(store: StreamStore, **kwargs: Any) -> pa.Table:
    return store.read(T, StreamQuery(**kwargs)).table


class StreamStoreContract:
    """Behaviour every stream store must show. Subclasses provide the ``stream_store`` fixture."""

    # -- tables and columns ------------------------------------------------------------------

    def test_ensure_table_creates_once_and_lists(self, stream_store: StreamStore) -> None:
        assert stream_store.table(T) is None
        created = stream_store.ensure_table(T, COLUMNS)
        assert created.name == T
        assert [c.name for c in created.columns] == [c.name for c in COLUMNS]
        assert stream_store.ensure_table(T, COLUMNS) == created
        assert [t.name for t in stream_store.tables()] == [T]
        assert created.physical_name == "ts_test_streams__meter"

    def test_new_columns_are_added_and_none_dropped(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS[:1])
        stream_store.append(T, points([{"rtId": A, "timestamp": at(0), "Voltage": 1.0}]))
        grown = stream_store.ensure_table(T, (StreamColumn("Current", "double"),))
        assert [c.name for c in grown.columns] == ["Voltage", "Current"]
        table = read_all(stream_store)
        assert table.column_names == ["rtId", "timestamp", "Voltage", "Current"]
        assert table.to_pylist()[0]["Voltage"] == 1.0
        assert table.to_pylist()[0]["Current"] is None

    def test_a_column_is_never_retyped(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        with pytest.raises(Conflict, match="Voltage"):
            stream_store.ensure_table(T, (StreamColumn("voltage", "varchar"),))

    def test_key_column_names_are_refused(self, stream_store: StreamStore) -> None:
        with pytest.raises(ValidationError, match="clashes"):
            stream_store.ensure_table(T, (StreamColumn("Timestamp", "double"),))

    def test_colliding_physical_names_get_distinct_tables(self, stream_store: StreamStore) -> None:
        first = stream_store.ensure_table("Lib.A/Meter", COLUMNS[:1])
        second = stream_store.ensure_table("Lib_A/Meter", COLUMNS[:1])
        assert first.physical_name != second.physical_name
        stream_store.append(
            "Lib.A/Meter", points([{"rtId": A, "timestamp": at(0), "Voltage": 1.0}])
        )
        assert stream_store.read("Lib_A/Meter", StreamQuery()).table.num_rows == 0

    def test_drop_table(self, stream_store: StreamStore) -> None:
        series(stream_store, 5)
        stream_store.drop_table(T)
        assert stream_store.table(T) is None
        assert read_all(stream_store).num_rows == 0
        stream_store.drop_table(T)

    # -- writing and reading -----------------------------------------------------------------

    def test_every_column_type_round_trips_with_microseconds(
        self, stream_store: StreamStore
    ) -> None:
        stream_store.ensure_table(T, COLUMNS)
        row = {
            "rtId": A,
            "timestamp": T0 + timedelta(microseconds=123_457),
            "Voltage": 230.25,
            "Count": 2**53 + 1,
            "On": True,
            "State": "Active",
            "Seen": T0 + timedelta(days=-400, microseconds=1),
        }
        assert stream_store.append(T, points([row])) == 1
        table = read_all(stream_store)
        assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
        assert table.to_pylist() == [row]

    def test_unknown_table_reads_empty(self, stream_store: StreamStore) -> None:
        page = stream_store.read("No.Such/Type", StreamQuery())
        assert page.table.num_rows == 0
        assert not page.has_next_page

    def test_unknown_column_rejects_the_batch(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS[:1])
        bad = pa.table(
            {
                "rtId": [A],
                "timestamp": pa.array([at(0)], pa.timestamp("us", tz="UTC")),
                "Voltage": [1.0],
                "Nope": [2.0],
            }
        )
        with pytest.raises(ValidationError, match="Nope"):
            stream_store.append(T, bad)
        assert read_all(stream_store).num_rows == 0

    def test_unconvertible_values_reject_the_batch(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        bad = pa.table(
            {
                "rtId": [A, A],
                "timestamp": pa.array([at(0), at(1)], pa.timestamp("us", tz="UTC")),
                "Count": ["1", "x"],
            }
        )
        with pytest.raises(ValidationError, match="Count"):
            stream_store.append(T, bad)
        assert read_all(stream_store).num_rows == 0

    def test_upsert_last_write_wins_on_given_columns_only(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        stream_store.append(
            T,
            points(
                [
                    {"rtId": A, "timestamp": at(0), "Voltage": 1.0, "Count": 10, "State": "x"},
                    {"rtId": A, "timestamp": at(1), "Voltage": 2.0, "Count": 20},
                ]
            ),
        )
        # same key again: Voltage given, Count null (= not given), State absent (= not given)
        stream_store.append(
            T,
            points(
                [
                    {"rtId": A, "timestamp": at(0), "Voltage": 9.0, "Count": None},
                    {"rtId": A, "timestamp": at(2), "Voltage": 3.0},
                ],
                COLUMNS[:2],
            ),
        )
        rows = read_all(stream_store).to_pylist()
        assert [(r["Voltage"], r["Count"], r["State"]) for r in rows] == [
            (9.0, 10, "x"),
            (2.0, 20, None),
            (3.0, None, None),
        ]

    def test_duplicates_inside_one_batch_merge_in_batch_order(
        self, stream_store: StreamStore
    ) -> None:
        stream_store.ensure_table(T, COLUMNS)
        stream_store.append(T, points([{"rtId": A, "timestamp": at(0), "State": "old"}]))
        stream_store.append(
            T,
            points(
                [
                    {"rtId": A, "timestamp": at(0), "Voltage": 1.0, "Count": 1},
                    {"rtId": B, "timestamp": at(0), "Voltage": 5.0},
                    {"rtId": A, "timestamp": at(0), "Voltage": 2.0, "Count": None},
                ]
            ),
        )
        rows = {r["rtId"]: r for r in read_all(stream_store).to_pylist()}
        assert len(rows) == 2
        assert (rows[A]["Voltage"], rows[A]["Count"], rows[A]["State"]) == (2.0, 1, "old")
        assert rows[B]["Voltage"] == 5.0

    def test_time_range_is_half_open(self, stream_store: StreamStore) -> None:
        series(stream_store, 10, (A,))
        table = read_all(stream_store, start=at(2), end=at(5))
        assert [t.timestamp() - T0.timestamp() for t in table.column("timestamp").to_pylist()] == [
            2.0,
            3.0,
            4.0,
        ]

    def test_rt_ids_and_column_subset(self, stream_store: StreamStore) -> None:
        series(stream_store, 10)
        table = read_all(stream_store, rt_ids=(B, C), columns=("count",))
        assert table.column_names == ["rtId", "timestamp", "Count"]
        assert set(table.column("rtId").to_pylist()) == {B, C}
        assert table.num_rows == 20
        with pytest.raises(ValidationError, match="Nope"):
            read_all(stream_store, columns=("Nope",))

    def test_order_is_timestamp_then_rt_id_both_directions(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        stream_store.append(
            T,
            points(
                [
                    {"rtId": B, "timestamp": at(1), "Count": 1},
                    {"rtId": A, "timestamp": at(1), "Count": 2},
                    {"rtId": C, "timestamp": at(0), "Count": 3},
                ]
            ),
        )
        ascending = read_all(stream_store).column("Count").to_pylist()
        descending = read_all(stream_store, descending=True).column("Count").to_pylist()
        assert ascending == [3, 2, 1]
        assert descending == [1, 2, 3]

    @pytest.mark.parametrize("descending", [False, True])
    def test_paging_walk_equals_full_read(
        self, stream_store: StreamStore, descending: bool
    ) -> None:
        series(stream_store, 50)
        full = read_all(stream_store, start=at(3), end=at(40), descending=descending)
        pages, after = [], None
        while True:
            page = stream_store.read(
                T,
                StreamQuery(start=at(3), end=at(40), descending=descending, limit=7, after=after),
            )
            pages.append(page.table)
            assert page.table.num_rows <= 7
            if not page.has_next_page:
                break
            after = page.end_cursor
        walked = pa.concat_tables(pages)
        assert walked.equals(full)
        assert walked.num_rows == 37 * 3

    def test_cursor_is_keyset_not_offset(self, stream_store: StreamStore) -> None:
        series(stream_store, 10, (B,))
        first = stream_store.read(T, StreamQuery(limit=3))
        # a point written before the cursor position must not shift the next page
        stream_store.append(T, points([{"rtId": A, "timestamp": at(0), "Count": 99}]))
        second = stream_store.read(T, StreamQuery(limit=3, after=first.end_cursor))
        assert [
            t.timestamp() - T0.timestamp() for t in second.table.column("timestamp").to_pylist()
        ] == [
            3.0,
            4.0,
            5.0,
        ]

    def test_cursor_of_other_direction_or_garbage_is_refused(
        self, stream_store: StreamStore
    ) -> None:
        series(stream_store, 10)
        page = stream_store.read(T, StreamQuery(limit=2))
        with pytest.raises(ValidationError, match="direction"):
            stream_store.read(T, StreamQuery(limit=2, descending=True, after=page.end_cursor))
        with pytest.raises(ValidationError, match="cursor"):
            stream_store.read(T, StreamQuery(limit=2, after="not-a-cursor"))

    def test_last_page_has_no_next_page(self, stream_store: StreamStore) -> None:
        series(stream_store, 4, (A,))
        page = stream_store.read(T, StreamQuery(limit=4))
        assert page.table.num_rows == 4
        assert not page.has_next_page
        after = stream_store.read(T, StreamQuery(limit=4, after=page.end_cursor))
        assert after.table.num_rows == 0
        assert not after.has_next_page

    # -- aggregation -------------------------------------------------------------------------

    @pytest.mark.parametrize("interval_s", [1, 7, 60])
    def test_aggregates_equal_pandas(self, stream_store: StreamStore, interval_s: int) -> None:
        frame = series(stream_store, 300)
        start, end = at(5), at(250)
        result = stream_store.aggregate(
            T,
            StreamAggregation(
                start,
                end,
                interval_s * 1_000_000,
                AGGREGATE_FUNCTIONS,
                columns=("Voltage", "Count"),
            ),
        ).to_pandas()
        expected = _pandas_aggregate(frame, start, end, interval_s)
        assert list(result.columns) == ["rtId", "bucket"] + [
            f"{c}_{f}" for c in ("Voltage", "Count") for f in AGGREGATE_FUNCTIONS
        ]
        assert len(result) == len(expected)
        result = result.set_index(["rtId", "bucket"]).sort_index()
        expected = expected.loc[result.index]
        for column in expected.columns:
            np.testing.assert_allclose(
                result[column].to_numpy(dtype=float),
                expected[column].to_numpy(dtype=float),
                rtol=1e-9,
                err_msg=column,
            )

    def test_buckets_are_epoch_aligned(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        stream_store.append(
            T,
            points(
                [
                    {
                        "rtId": A,
                        "timestamp": datetime(2026, 1, 1, 10, 14, 59, tzinfo=UTC),
                        "Count": 1,
                    },
                    {
                        "rtId": A,
                        "timestamp": datetime(2026, 1, 1, 10, 15, 0, tzinfo=UTC),
                        "Count": 2,
                    },
                    {
                        "rtId": A,
                        "timestamp": datetime(2026, 1, 1, 10, 29, 59, tzinfo=UTC),
                        "Count": 3,
                    },
                ]
            ),
        )
        result = stream_store.aggregate(
            T,
            StreamAggregation(
                T0, at(86_400), 15 * 60_000_000, ("sum", "count"), columns=("Count",)
            ),
        )
        assert result.to_pylist() == [
            {
                "rtId": A,
                "bucket": datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
                "Count_sum": 1,
                "Count_count": 1,
            },
            {
                "rtId": A,
                "bucket": datetime(2026, 1, 1, 10, 15, tzinfo=UTC),
                "Count_sum": 5,
                "Count_count": 2,
            },
        ]

    def test_aggregate_of_all_columns_skips_avg_sum_on_text(
        self, stream_store: StreamStore
    ) -> None:
        stream_store.ensure_table(T, COLUMNS)
        stream_store.append(
            T,
            points(
                [
                    {"rtId": A, "timestamp": at(0), "State": "b"},
                    {"rtId": A, "timestamp": at(1), "State": "a"},
                ]
            ),
        )
        result = stream_store.aggregate(
            T, StreamAggregation(T0, at(10), 10_000_000, ("avg", "min", "first", "last"))
        )
        row = result.to_pylist()[0]
        assert "State_avg" not in row
        assert (row["State_min"], row["State_first"], row["State_last"]) == ("a", "b", "a")
        with pytest.raises(ValidationError, match="numeric"):
            stream_store.aggregate(
                T, StreamAggregation(T0, at(10), 10_000_000, ("avg",), columns=("State",))
            )

    # -- deleting ----------------------------------------------------------------------------

    def test_delete_range_and_rt_ids(self, stream_store: StreamStore) -> None:
        series(stream_store, 10)
        assert stream_store.delete(T, at(2), at(4), rt_ids=[A]) == 2
        assert read_all(stream_store).num_rows == 28
        # before 1 s: A at 0 s, B at 0.25 s, C at 0.5 s
        assert stream_store.delete(T, None, at(1)) == 3
        assert read_all(stream_store).num_rows == 25
        assert stream_store.delete(T) == 25
        assert read_all(stream_store).num_rows == 0
        assert stream_store.delete("No.Such/Type", None, None) == 0

    # -- metadata ----------------------------------------------------------------------------

    def test_meta_documents(self, stream_store: StreamStore) -> None:
        assert stream_store.get_meta("retention", T) is None
        stream_store.put_meta("retention", T, {"keep": "90d"})
        stream_store.put_meta("retention", T, {"keep": "30d"})
        stream_store.put_meta("retention", "Other/Type", {"keep": "1d"})
        assert stream_store.get_meta("retention", T) == {"keep": "30d"}
        assert stream_store.list_meta("retention") == {
            "Other/Type": {"keep": "1d"},
            T: {"keep": "30d"},
        }
        stream_store.put_meta("retention", T, None)
        assert stream_store.get_meta("retention", T) is None

    # -- concurrency -------------------------------------------------------------------------

    def test_threads_write_and_read_concurrently(self, stream_store: StreamStore) -> None:
        stream_store.ensure_table(T, COLUMNS)
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            try:
                for j in range(10):
                    rows = [
                        {"rtId": f"{k:024x}", "timestamp": at(j * 10 + i), "Count": i}
                        for i in range(10)
                    ]
                    stream_store.append(T, points(rows))
                    stream_store.read(T, StreamQuery(limit=5, rt_ids=(f"{k:024x}",)))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert read_all(stream_store).num_rows == 6 * 100

    def test_append_to_a_missing_table_is_a_workbench_error(
        self, stream_store: StreamStore
    ) -> None:
        with pytest.raises(WorkbenchError, match="ensure_table"):
            stream_store.append(T, points([{"rtId": A, "timestamp": at(0)}]))


def _pandas_aggregate(
    frame: pd.DataFrame, start: datetime, end: datetime, interval_s: int
) -> pd.DataFrame:
    data = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)].copy()
    micros = (data["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    size = interval_s * 1_000_000
    data["bucket"] = pd.to_datetime((micros // size) * size, unit="us", utc=True)
    data = data.sort_values(["rtId", "timestamp"])
    grouped = data.groupby(["rtId", "bucket"])
    out = {}
    for column in ("Voltage", "Count"):
        g = grouped[column]
        out[f"{column}_avg"] = g.mean()
        out[f"{column}_min"] = g.min()
        out[f"{column}_max"] = g.max()
        out[f"{column}_sum"] = g.sum(min_count=1)
        out[f"{column}_count"] = g.count()
        out[f"{column}_first"] = g.first()
        out[f"{column}_last"] = g.last()
    return pd.DataFrame(out)
