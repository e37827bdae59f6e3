"""The aggregation contract every :class:`~workbench.storage.base.EntityStore` adapter passes.

Subclass :class:`EntityAggregateContract` with a ``store`` fixture (a fresh, empty store), as for
:class:`~workbench.testing.entity_store_contract.EntityStoreContract`. The data: meters (state,
power, energy, name, installed) linked to buildings by ``Test/Parent``; one building archived,
one meter archived, one meter without a building.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.query.aggregation import (
    AggregatePath,
    AggregationResult,
    EntityAggregation,
    Measure,
    MeasureFunction,
)
from workbench.query.model import AssociationCondition, Condition, EntityQuery, Operator
from workbench.storage.base import EntityStore, WriteBatch
from workbench.testing.entity_store_contract import (
    BUILDING,
    METER,
    PARENT,
    attr,
    link,
    make_entity,
)

__all__ = ["EntityAggregateContract", "aggregation_fixture"]

NAME = AggregatePath(attr("Name"))
STATE = AggregatePath(attr("State"))
POWER = AggregatePath(attr("Power"))
ENERGY = AggregatePath(attr("Energy"))
PARENT_NAME = AggregatePath(attr("Name"), ((PARENT, "outbound"),))
PARENT_SIZE = AggregatePath(attr("Size"), ((PARENT, "outbound"),))
METERS = EntityQuery(type_ids=(METER,))

#: (state, power, energy, building index or None, archived)
_METERS = [
    (1, 10.0, 100, 0, False),
    (1, 20.0, 200, 0, False),
    (2, 5.5, None, 1, False),
    (2, None, 50, 1, False),
    (1, 7.0, 70, 2, False),  # building 2 is archived: no parent name
    (3, 1.0, 1, None, False),  # no building
    (1, 1000.0, 1000, 0, True),  # archived
]
_BUILDINGS = [("Hall A", 100, False), ("$$ Hall B", 200, False), ("Old", 300, True)]


def aggregation_fixture(store: EntityStore) -> None:
    """Write the contract's data into ``store``."""
    buildings = [
        make_entity({"Name": name, "Size": size}, ck_type_id=BUILDING, archived=archived)
        for name, size, archived in _BUILDINGS
    ]
    meters = []
    links = []
    for number, (state, power, energy, building, archived) in enumerate(_METERS):
        attributes: dict[str, Any] = {
            "State": state,
            "Name": f"M{number}",
            "Installed": datetime(2024, 1, 1 + number, tzinfo=UTC),
        }
        if power is not None:
            attributes["Power"] = power
        if energy is not None:
            attributes["Energy"] = energy
        meter = make_entity(attributes, archived=archived)
        meters.append(meter)
        if building is not None:
            links.append(link(meter, buildings[building]))
    store.apply(WriteBatch(inserts=[*buildings, *meters], add_associations=links))


def _measures(*specs: tuple[MeasureFunction, AggregatePath]) -> tuple[Measure, ...]:
    return tuple(Measure(f, p, ".".join(p.path[1:])) for f, p in specs)


def _rows(result: AggregationResult) -> list[tuple[Any, ...]]:
    return [(*r.keys, r.count, *r.values) for r in result.rows]


class EntityAggregateContract:
    """Aggregations computed by the store; subclasses provide ``store``."""

    @pytest.fixture
    def data(self, store: EntityStore) -> EntityStore:
        aggregation_fixture(store)
        return store

    def test_whole_set(self, data: EntityStore) -> None:
        result = data.aggregate(
            EntityAggregation(
                METERS,
                _measures(
                    ("count", POWER),
                    ("sum", POWER),
                    ("avg", POWER),
                    ("min", POWER),
                    ("max", ENERGY),
                    ("sum", ENERGY),
                ),
            )
        )
        assert len(result.rows) == 1
        row = result.rows[0]
        assert row.keys == ()
        assert row.count == 6
        count, total, average, low, high, energy = row.values
        assert count == 5
        assert total == pytest.approx(43.5)
        assert average == pytest.approx(43.5 / 5)
        assert low == pytest.approx(1.0)
        assert high == 200
        assert energy == 421
        assert type(energy) is int
        assert not result.has_next_page
        assert result.end_cursor is None

    def test_archived_entities_count_when_asked(self, data: EntityStore) -> None:
        query = dataclasses.replace(METERS, include_archived=True)
        result = data.aggregate(EntityAggregation(query, _measures(("max", POWER))))
        assert result.rows[0].count == 7
        assert result.rows[0].values == (pytest.approx(1000.0),)

    def test_group_by_attribute(self, data: EntityStore) -> None:
        result = data.aggregate(
            EntityAggregation(METERS, _measures(("sum", POWER), ("avg", ENERGY)), group_by=(STATE,))
        )
        assert _rows(result) == [
            (1, 3, pytest.approx(37.0), pytest.approx(370 / 3)),
            (2, 2, pytest.approx(5.5), pytest.approx(50.0)),
            (3, 1, pytest.approx(1.0), pytest.approx(1.0)),
        ]
        assert [r.cursor is not None for r in result.rows] == [True] * 3
        assert result.end_cursor == result.rows[-1].cursor

    def test_group_by_association_path(self, data: EntityStore) -> None:
        result = data.aggregate(
            EntityAggregation(METERS, _measures(("sum", POWER)), group_by=(PARENT_NAME,))
        )
        # missing keys first: the meter without a building and the one of the archived building
        assert _rows(result) == [
            (None, 2, pytest.approx(8.0)),
            ("$$ Hall B", 2, pytest.approx(5.5)),
            ("Hall A", 2, pytest.approx(30.0)),
        ]

    def test_group_by_attribute_and_association_path(self, data: EntityStore) -> None:
        result = data.aggregate(
            EntityAggregation(
                METERS,
                _measures(("count", ENERGY), ("min", POWER), ("max", POWER)),
                group_by=(STATE, PARENT_NAME),
            )
        )
        assert _rows(result) == [
            (1, None, 1, 1, pytest.approx(7.0), pytest.approx(7.0)),
            (1, "Hall A", 2, 2, pytest.approx(10.0), pytest.approx(20.0)),
            (2, "$$ Hall B", 2, 1, pytest.approx(5.5), pytest.approx(5.5)),
            (3, None, 1, 1, pytest.approx(1.0), pytest.approx(1.0)),
        ]

    def test_groups_page_with_first_and_after(self, data: EntityStore) -> None:
        whole = data.aggregate(
            EntityAggregation(METERS, _measures(("sum", POWER)), group_by=(STATE, PARENT_NAME))
        )
        seen: list[tuple[Any, ...]] = []
        after = None
        for _ in range(10):
            page = data.aggregate(
                EntityAggregation(
                    METERS,
                    _measures(("sum", POWER)),
                    group_by=(STATE, PARENT_NAME),
                    first=3,
                    after=after,
                )
            )
            assert len(page.rows) <= 3
            seen.extend(_rows(page))
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert seen == _rows(whole)
        empty = data.aggregate(EntityAggregation(METERS, group_by=(STATE,), first=0))
        assert empty.rows == []
        assert empty.has_next_page

    def test_filters_select_the_same_entities_as_find(self, data: EntityStore) -> None:
        query = dataclasses.replace(
            METERS,
            filters=(
                Condition(attr("Power"), Operator.GREATER_THAN, 5.0),
                AssociationCondition(
                    PARENT, "outbound", (Condition(attr("Name"), Operator.LIKE, "%hall%"),)
                ),
            ),
        )
        result = data.aggregate(EntityAggregation(query, _measures(("sum", ENERGY))))
        assert result.rows[0].count == data.count(query) == 3
        assert result.rows[0].values == (300,)
        grouped = data.aggregate(
            EntityAggregation(query, _measures(("sum", ENERGY)), group_by=(PARENT_NAME,))
        )
        assert _rows(grouped) == [("$$ Hall B", 1, None), ("Hall A", 2, 300)]

    def test_nothing_matches(self, data: EntityStore) -> None:
        query = dataclasses.replace(
            METERS, filters=(Condition(attr("State"), Operator.EQUALS, 99),)
        )
        whole = data.aggregate(
            EntityAggregation(query, _measures(("sum", POWER), ("count", POWER)))
        )
        assert _rows(whole) == [(0, None, 0)]
        grouped = data.aggregate(EntityAggregation(query, group_by=(STATE,)))
        assert grouped.rows == []
        assert not grouped.has_next_page

    def test_strings_and_datetimes_decode(self, data: EntityStore) -> None:
        installed = AggregatePath(attr("Installed"))
        created = AggregatePath(("rtCreationDateTime",))
        result = data.aggregate(
            EntityAggregation(
                METERS,
                _measures(("min", installed), ("max", NAME), ("min", created)),
            )
        )
        low, high, first_created = result.rows[0].values
        assert low == datetime(2024, 1, 1, tzinfo=UTC)
        assert high == "M5"
        assert isinstance(first_created, datetime)
        assert first_created.tzinfo is not None
        by_type = data.aggregate(
            EntityAggregation(EntityQuery(), group_by=(AggregatePath(("ckTypeId",)),))
        )
        assert _rows(by_type) == [(BUILDING, 2), (METER, 6)]

    def test_measures_across_associations(self, data: EntityStore) -> None:
        aggregation = EntityAggregation(
            METERS, _measures(("sum", PARENT_SIZE), ("max", PARENT_SIZE)), group_by=(STATE,)
        )
        if not data.supports_association_measures():
            with pytest.raises(ValidationError, match="association"):
                data.aggregate(aggregation)
            return
        assert _rows(data.aggregate(aggregation)) == [
            (1, 3, 200, 100),
            (2, 2, 400, 200),
            (3, 1, None, None),
        ]

    def test_unknown_function_and_negative_first_are_refused(self, data: EntityStore) -> None:
        bad = Measure("median", POWER, "power")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="median"):
            data.aggregate(EntityAggregation(METERS, (bad,)))
        with pytest.raises(ValidationError, match="first"):
            data.aggregate(EntityAggregation(METERS, group_by=(STATE,), first=-1))
