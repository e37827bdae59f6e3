"""The aggregation contract every :class:`~workbench.storage.base.EntityStore` adapter passes.

Subclass :class:`EntityAggregateContract` with a ``store`` fixture (a fresh, empty store), as for
:class:`~workbench.testing.entity_store_contract.EntityStoreContract`. The data: meters (state,
power, energy, name, installed) linked to buildings by ``Test/Parent``; one building archived,
one meter archived, one meter without a building.

The parent id kept on the entity (:mod:`workbench.storage.parents`) has its own tests: every
``System/ParentChild`` link is mirrored by a ``Test/Parent`` link, so grouping by
``parent->name`` (read by the parent id) must give what grouping through the mirror's links
gives, after a parent moves, a parent is erased, an import, a restore, an update.
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
from workbench.storage.base import EntityStore, StoredEntity, WriteBatch
from workbench.storage.parents import PARENT_HOP, PARENT_ROLE
from workbench.testing.entity_store_contract import (
    BUILDING,
    METER,
    PARENT,
    attr,
    link,
    make_entity,
    updated,
)

__all__ = ["EntityAggregateContract", "aggregation_fixture"]

NAME = AggregatePath(attr("Name"))
STATE = AggregatePath(attr("State"))
POWER = AggregatePath(attr("Power"))
ENERGY = AggregatePath(attr("Energy"))
PARENT_NAME = AggregatePath(attr("Name"), ((PARENT, "outbound"),))
PARENT_SIZE = AggregatePath(attr("Size"), ((PARENT, "outbound"),))
METERS = EntityQuery(type_ids=(METER,))
SYSTEM_PARENT_NAME = AggregatePath(attr("Name"), (PARENT_HOP,))

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


def _family(parent: StoredEntity, *children: StoredEntity) -> list[Any]:
    """The ``System/ParentChild`` links of ``children`` to ``parent``, each with its mirror."""
    return [link(c, parent, role) for c in children for role in (PARENT_ROLE, PARENT)]


class ParentIdContract:
    """Grouping by ``parent->`` through the parent id kept on the entity; part of
    :class:`EntityAggregateContract`."""

    def _grouped(self, store: EntityStore) -> list[tuple[Any, ...]]:
        """Rows by (state, parent name) via the parent id, checked against the mirror links."""
        measures = _measures(
            ("count", POWER), ("sum", POWER), ("avg", POWER), ("min", POWER), ("max", POWER)
        )
        by_id = store.aggregate(
            EntityAggregation(METERS, measures, group_by=(STATE, SYSTEM_PARENT_NAME))
        )
        by_links = store.aggregate(
            EntityAggregation(METERS, measures, group_by=(STATE, PARENT_NAME))
        )
        assert _rows(by_id) == _rows(by_links)
        by_name = store.aggregate(EntityAggregation(METERS, group_by=(SYSTEM_PARENT_NAME,)))
        assert _rows(by_name) == _rows(
            store.aggregate(EntityAggregation(METERS, group_by=(PARENT_NAME,)))
        )
        return [(state, name, count) for state, name, count, *_ in _rows(by_id)]

    @pytest.fixture
    def family(self, store: EntityStore) -> dict[str, StoredEntity]:
        hall = make_entity({"Name": "Hall"}, ck_type_id=BUILDING)
        yard = make_entity({"Name": "Yard"}, ck_type_id=BUILDING)
        old = make_entity({"Name": "Old"}, ck_type_id=BUILDING, archived=True)
        meters = {
            f"m{i}": make_entity({"State": state, "Power": float(i + 1)})
            for i, state in enumerate([1, 1, 2, 2, 1])
        }
        links = [
            *_family(hall, meters["m0"], meters["m1"], meters["m2"]),
            *_family(yard, meters["m3"]),
            *_family(old, meters["m4"]),
        ]
        store.apply(WriteBatch(inserts=[hall, yard, old, *meters.values()], add_associations=links))
        return {"hall": hall, "yard": yard, "old": old, **meters}

    def test_parent_id_groups_as_the_links_do(
        self, store: EntityStore, family: dict[str, StoredEntity]
    ) -> None:
        assert self._grouped(store) == [
            (1, None, 1),
            (1, "Hall", 2),
            (2, "Hall", 1),
            (2, "Yard", 1),
        ]
        paged = store.aggregate(
            EntityAggregation(METERS, group_by=(STATE, SYSTEM_PARENT_NAME), first=2)
        )
        rest = store.aggregate(
            EntityAggregation(METERS, group_by=(STATE, SYSTEM_PARENT_NAME), after=paged.end_cursor)
        )
        assert [r.keys for r in (*paged.rows, *rest.rows)] == [
            (1, None),
            (1, "Hall"),
            (2, "Hall"),
            (2, "Yard"),
        ]

    def test_parent_moved(self, store: EntityStore, family: dict[str, StoredEntity]) -> None:
        m2, hall, yard = family["m2"], family["hall"], family["yard"]
        store.apply(
            WriteBatch(remove_associations=_family(hall, m2), add_associations=_family(yard, m2))
        )
        assert self._grouped(store) == [(1, None, 1), (1, "Hall", 2), (2, "Yard", 2)]
        # the archived parent is still stored: a child moved to it has no parent name
        store.apply(
            WriteBatch(
                remove_associations=_family(yard, m2), add_associations=_family(family["old"], m2)
            )
        )
        assert self._grouped(store) == [(1, None, 1), (1, "Hall", 2), (2, None, 1), (2, "Yard", 1)]

    def test_parent_erased(self, store: EntityStore, family: dict[str, StoredEntity]) -> None:
        store.apply(WriteBatch(erase=[family["hall"].rt_id]))
        assert self._grouped(store) == [(1, None, 3), (2, None, 1), (2, "Yard", 1)]
        # a new parent for the orphans
        hall = make_entity({"Name": "New hall"}, ck_type_id=BUILDING)
        store.apply(
            WriteBatch(inserts=[hall], add_associations=_family(hall, family["m0"], family["m2"]))
        )
        assert self._grouped(store) == [
            (1, None, 2),
            (1, "New hall", 1),
            (2, "New hall", 1),
            (2, "Yard", 1),
        ]

    def test_update_and_archive_keep_the_parent(
        self, store: EntityStore, family: dict[str, StoredEntity]
    ) -> None:
        m0, m3 = family["m0"], family["m3"]
        store.apply(WriteBatch(updates=[(updated(m0, attributes={"State": 2, "Power": 9.0}), 1)]))
        assert self._grouped(store) == [
            (1, None, 1),
            (1, "Hall", 1),
            (2, "Hall", 2),
            (2, "Yard", 1),
        ]
        store.apply(WriteBatch(updates=[(updated(family["yard"], archived=True), 1)]))
        store.apply(WriteBatch(updates=[(updated(m3, attributes={"State": 1}), 1)]))
        assert self._grouped(store) == [(1, None, 2), (1, "Hall", 1), (2, "Hall", 2)]

    def test_import_and_restore(self, store: EntityStore) -> None:
        # an import: parents, children and links in one batch, many of them
        sites = [make_entity({"Name": f"S{i}"}, ck_type_id=BUILDING) for i in range(3)]
        children = [make_entity({"State": i % 2, "Power": 1.0}) for i in range(300)]
        links = [lk for i, c in enumerate(children) for lk in _family(sites[i % 3], c)]
        store.apply(WriteBatch(inserts=[*sites, *children], add_associations=links))
        assert self._grouped(store) == [
            (0, "S0", 50),
            (0, "S1", 50),
            (0, "S2", 50),
            (1, "S0", 50),
            (1, "S1", 50),
            (1, "S2", 50),
        ]
        # a restore: entities erased, then written back with their links, some under another
        # parent than before
        moved = children[:30]
        store.apply(WriteBatch(erase=[c.rt_id for c in moved]))
        store.apply(
            WriteBatch(
                inserts=moved, add_associations=[lk for c in moved for lk in _family(sites[0], c)]
            )
        )
        assert self._grouped(store) == [
            (0, "S0", 60),
            (0, "S1", 45),
            (0, "S2", 45),
            (1, "S0", 60),
            (1, "S1", 45),
            (1, "S2", 45),
        ]

    def test_a_child_with_two_parents_counts_in_both(
        self, store: EntityStore, family: dict[str, StoredEntity]
    ) -> None:
        # the runtime refuses a second parent (multiplicity One); a direct store write does not
        store.apply(WriteBatch(add_associations=_family(family["yard"], family["m0"])))
        assert self._grouped(store) == [
            (1, None, 1),
            (1, "Hall", 2),
            (1, "Yard", 1),
            (2, "Hall", 1),
            (2, "Yard", 1),
        ]
        store.apply(WriteBatch(remove_associations=_family(family["yard"], family["m0"])))
        assert self._grouped(store) == [
            (1, None, 1),
            (1, "Hall", 2),
            (2, "Hall", 1),
            (2, "Yard", 1),
        ]


class EntityAggregateContract(ParentIdContract):
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
