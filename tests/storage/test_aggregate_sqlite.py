"""Entity aggregations on SQLite: the shared contract, and that it is one GROUP BY statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.query.aggregation import EntityAggregation, Measure, MeasureFunction
from workbench.storage.sqlite import SqliteEntityStore
from workbench.storage.sqlite_aggregate import compile_aggregation
from workbench.testing.entity_aggregate_contract import (
    METERS,
    PARENT_NAME,
    POWER,
    STATE,
    EntityAggregateContract,
)


class TestSqliteAggregations(EntityAggregateContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteEntityStore]:
        store = SqliteEntityStore.open(f"sqlite://{tmp_path}/tenant/entities.db")
        yield store
        store.drop()


def test_one_group_by_statement_with_a_join_per_hop(tmp_path: Path) -> None:
    store = SqliteEntityStore.open(f"sqlite://{tmp_path}/entities.db")
    try:
        sql, _params, _keys, _measures = compile_aggregation(
            store,
            EntityAggregation(
                METERS,
                (Measure("sum", POWER, "power"), Measure("count", PARENT_NAME, "parent->name")),
                group_by=(STATE, PARENT_NAME),
            ),
        )
    finally:
        store.close()
    assert sql.count("GROUP BY") == 1
    # the key and the measure share the hop's joins: the link, then its far end
    assert sql.count("LEFT JOIN") == 2


def test_aggregate_index_serves_the_statement_and_keeps_the_answer(tmp_path: Path) -> None:
    from workbench.testing.entity_aggregate_contract import aggregation_fixture

    store = SqliteEntityStore.open(f"sqlite://{tmp_path}/entities.db")
    try:
        aggregation_fixture(store)
        aggregation = EntityAggregation(
            METERS, (Measure("sum", POWER, "power"),), group_by=(STATE, PARENT_NAME)
        )
        before = store.aggregate(aggregation)
        assert store.supports_aggregate_indexes()
        name = store.create_aggregate_index(aggregation)
        assert name == store.create_aggregate_index(aggregation)  # idempotent
        sql, params, _keys, _measures = compile_aggregation(store, aggregation)
        with store._connection() as conn:
            plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert name in plan
        after = store.aggregate(aggregation)
        assert [(r.keys, r.count, r.values) for r in after.rows] == [
            (r.keys, r.count, r.values) for r in before.rows
        ]
    finally:
        store.close()


def test_grouping_by_a_far_value_groups_by_its_rt_id_first_and_answers_the_same(
    tmp_path: Path,
) -> None:
    from workbench.testing.entity_aggregate_contract import ENERGY, aggregation_fixture

    store = SqliteEntityStore.open(f"sqlite://{tmp_path}/entities.db")
    try:
        aggregation_fixture(store)
        functions: tuple[MeasureFunction, ...] = ("count", "sum", "avg", "min", "max")
        measures = tuple(Measure(f, path, f) for f in functions for path in (POWER, ENERGY))
        two_steps = EntityAggregation(METERS, measures, group_by=(STATE, PARENT_NAME))
        sql, _params, _keys, _measures = compile_aggregation(store, two_steps)
        # the far end's document is read once per group, after grouping by its rt id
        assert sql.count("GROUP BY") == 2
        assert "AS r1" in sql
        # a measure across the association needs the far end per entity: one statement
        one_step = EntityAggregation(
            METERS, (*measures, Measure("count", PARENT_NAME, "n")), group_by=(STATE, PARENT_NAME)
        )
        assert compile_aggregation(store, one_step)[0].count("GROUP BY") == 1
        expected = store.aggregate(one_step).rows
        got = store.aggregate(two_steps).rows
        assert [(r.keys, r.count) for r in got] == [(r.keys, r.count) for r in expected]
        for row, want in zip(got, expected, strict=True):
            assert list(row.values) == pytest.approx(list(want.values[:-1]))
        assert len(expected) == 4
        with store._connection() as conn:  # the sort ran with temporary files; reset after
            assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2
    finally:
        store.close()
