"""The contract every :class:`~workbench.storage.base.EntityStore` adapter passes unchanged.

Subclass :class:`EntityStoreContract` in the adapter's test module and provide a ``store`` fixture
yielding a fresh, empty store (and closing or dropping it afterwards)::

    class TestSqliteEntityStore(EntityStoreContract):
        @pytest.fixture
        def store(self, tmp_path): ...

Test data is built with the helpers of this module (:func:`make_entity`, :func:`insert`, ...), so
every adapter sees the same shapes. Datetimes use millisecond precision because MongoDB stores no
finer; adapters must keep at least that.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cmp_to_key
from typing import Any

import pytest

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    EntityQuery,
    Filter,
    Operator,
    Page,
    Path,
    SortKey,
    TextSearch,
)
from workbench.storage.base import (
    EntityStore,
    IndexSpec,
    MetaWrite,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)

__all__ = [
    "BUILDING",
    "METER",
    "PARENT",
    "SITE",
    "EntityStoreContract",
    "attr",
    "expected_order",
    "find_all",
    "insert",
    "link",
    "make_entity",
    "new_rt_id",
    "snapshot",
    "updated",
]

METER = "Test/Meter"
BUILDING = "Test/Building"
SITE = "Test/Site"
PARENT = "Test/Parent"
"""Association role: child ``--Test/Parent-->`` parent (meter → building → site)."""
SUPPLIES = "Test/Supplies"

T0 = datetime(2025, 1, 1, 8, 0, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=2))


def new_rt_id() -> str:
    """A fresh 24-hex rtId."""
    return secrets.token_hex(12)


def attr(*keys: str) -> Path:
    """The storage path of an attribute (``attr("Phase", "Voltage")``)."""
    return ("attributes", *keys)


_clock = itertools.count()


def make_entity(
    attributes: dict[str, Any] | None = None,
    *,
    ck_type_id: str = METER,
    rt_id: str | None = None,
    rt_well_known_name: str | None = None,
    rt_version: int = 1,
    archived: bool = False,
    created: datetime | None = None,
) -> StoredEntity:
    """A new entity; creation times increase by one second per call unless given."""
    stamp = created or T0 + timedelta(seconds=next(_clock))
    return StoredEntity(
        rt_id=rt_id or new_rt_id(),
        ck_type_id=ck_type_id,
        attributes=dict(attributes or {}),
        rt_version=rt_version,
        rt_creation_datetime=stamp,
        rt_changed_datetime=stamp,
        rt_well_known_name=rt_well_known_name,
        archived=archived,
    )


def insert(store: EntityStore, *entities: StoredEntity) -> list[StoredEntity]:
    """Insert ``entities`` in one batch and return them."""
    store.apply(WriteBatch(inserts=list(entities)))
    return list(entities)


def link(source: StoredEntity, target: StoredEntity, role_id: str = PARENT) -> StoredAssociation:
    return StoredAssociation(
        role_id, source.rt_id, source.ck_type_id, target.rt_id, target.ck_type_id
    )


def find_all(store: EntityStore, query: EntityQuery, page_size: int) -> list[StoredEntity]:
    """Walk every page of ``query`` with ``first=page_size``, checking page invariants."""
    items: list[StoredEntity] = []
    after: str | None = None
    for _ in range(10_000):
        page = store.find(_replace(query, first=page_size, after=after))
        assert len(page.items) <= page_size
        assert len(page.cursors) == len(page.items)
        if page.items:
            assert page.end_cursor == page.cursors[-1]
        items.extend(page.items)
        if not page.has_next_page:
            return items
        assert page.items, "has_next_page with an empty page"
        after = page.end_cursor
    raise AssertionError("paging did not terminate")


def _replace(query: EntityQuery, **changes: Any) -> EntityQuery:
    return dataclasses.replace(query, **changes)


def _value_at(entity: StoredEntity, path: Path) -> Any:
    system = {
        "rtId": entity.rt_id,
        "ckTypeId": entity.ck_type_id,
        "rtWellKnownName": entity.rt_well_known_name,
        "rtVersion": entity.rt_version,
        "rtCreationDateTime": entity.rt_creation_datetime,
        "rtChangedDateTime": entity.rt_changed_datetime,
    }
    if len(path) == 1:
        return system[path[0]]
    value: Any = entity.attributes
    for key in path[1:]:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def expected_order(entities: Sequence[StoredEntity], sort: Sequence[SortKey]) -> list[str]:
    """rtIds in the order the contract prescribes: each key ascending with missing values first,
    or descending with missing values last, then rtId ascending."""
    keys = [*sort, SortKey(("rtId",))]

    def compare(a: StoredEntity, b: StoredEntity) -> int:
        for key in keys:
            va, vb = _value_at(a, key.path), _value_at(b, key.path)
            if va == vb:
                continue
            if va is None:
                result = -1
            elif vb is None:
                result = 1
            else:
                result = -1 if va < vb else 1
            return -result if key.descending else result
        return 0

    return [e.rt_id for e in sorted(entities, key=cmp_to_key(compare))]


def snapshot(store: EntityStore, rt_ids: Sequence[str], namespaces: Sequence[str]) -> Any:
    """Everything observable about ``rt_ids`` and the meta ``namespaces``, for before/after
    comparisons."""
    entities = store.get_many(rt_ids)
    out = sorted(
        (a.role_id, a.source_rt_id, a.target_rt_id) for a in store.associations(rt_ids, "outbound")
    )
    inbound = sorted(
        (a.role_id, a.source_rt_id, a.target_rt_id) for a in store.associations(rt_ids, "inbound")
    )
    meta = {ns: store.list_meta(ns) for ns in namespaces}
    return entities, out, inbound, meta


def _ids(page: Page[StoredEntity] | list[StoredEntity]) -> list[str]:
    items = page.items if isinstance(page, Page) else page
    return [e.rt_id for e in items]


# --- the operator data set ------------------------------------------------------------------

_OPERATOR_DATA: dict[str, dict[str, Any]] = {
    "m1": {
        "Name": "Alpha",
        "Serial": 10,
        "Voltage": 230.5,
        "Active": True,
        "Tags": ["red", "blue"],
        "Installed": datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        "Phase": {"Voltage": 231.0, "Current": 5},
        "Description": "north hall",
    },
    "m2": {
        "Name": "beta",
        "Serial": 20,
        "Voltage": 231,
        "Active": False,
        "Tags": ["green"],
        "Installed": datetime(2024, 6, 1, 12, 30, 15, 250000, tzinfo=UTC),
        "Phase": {"Voltage": 229.5},
        "Levels": [1, 2.5],
        "Dates": [datetime(2024, 2, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)],
    },
    "m3": {
        "Name": "Gamma ray",
        "Serial": 30,
        "Voltage": 229.0,
        "Tags": [],
        # 2025-01-01T00:00:00Z written in another zone
        "Installed": datetime(2025, 1, 1, 2, 0, tzinfo=CET),
        "Phase": {},
        "Description": "Basement",
    },
    "m4": {"Name": "delta_x", "Voltage": None, "Tags": ["Red"], "Description": "code 10"},
    "m5": {"Name": "Épsilon"},
}

_V = attr("Voltage")
_OPERATOR_CASES: list[tuple[Filter, set[str]]] = [
    (Condition(attr("Name"), Operator.EQUALS, "Alpha"), {"m1"}),
    (Condition(attr("Name"), Operator.EQUALS, "alpha"), set()),
    (Condition(attr("Serial"), Operator.EQUALS, 10), {"m1"}),
    (Condition(_V, Operator.EQUALS, 231.0), {"m2"}),  # float value, int stored
    (Condition(_V, Operator.EQUALS, 229), {"m3"}),  # int value, float stored
    (Condition(attr("Active"), Operator.EQUALS, True), {"m1"}),
    (Condition(attr("Active"), Operator.EQUALS, False), {"m2"}),
    (Condition(attr("Active"), Operator.NOT_EQUALS, True), {"m2", "m3", "m4", "m5"}),
    (Condition(attr("Serial"), Operator.NOT_EQUALS, 10), {"m2", "m3", "m4", "m5"}),
    (Condition(_V, Operator.LESS_THAN, 230.5), {"m3"}),
    (Condition(_V, Operator.LESS_EQUAL_THAN, 230.5), {"m1", "m3"}),
    (Condition(_V, Operator.GREATER_THAN, 230.5), {"m2"}),
    (Condition(_V, Operator.GREATER_EQUAL_THAN, 230.5), {"m1", "m2"}),
    (Condition(_V, Operator.GREATER_THAN, 230), {"m1", "m2"}),
    (Condition(attr("Serial"), Operator.IN, [10, 30, 99]), {"m1", "m3"}),
    (Condition(attr("Serial"), Operator.IN, []), set()),
    (Condition(attr("Serial"), Operator.NOT_IN, [10, 30]), {"m2", "m4", "m5"}),
    (Condition(attr("Name"), Operator.IN, ["beta", "Gamma ray"]), {"m2", "m3"}),
    (Condition(attr("Name"), Operator.LIKE, "a%"), {"m1"}),
    (Condition(attr("Name"), Operator.LIKE, "%TA%"), {"m2", "m4"}),
    (Condition(attr("Name"), Operator.LIKE, "_eta"), {"m2"}),
    (Condition(attr("Name"), Operator.LIKE, "%ray"), {"m3"}),
    (Condition(attr("Name"), Operator.LIKE, "épsilon"), {"m5"}),
    (Condition(attr("Name"), Operator.LIKE, "delta_x"), {"m4"}),
    (Condition(attr("Serial"), Operator.LIKE, "1%"), set()),  # LIKE matches strings only
    (Condition(attr("Name"), Operator.MATCH_REG_EX, "^[AB]"), {"m1"}),
    (Condition(attr("Name"), Operator.MATCH_REG_EX, "ray$"), {"m3"}),
    (Condition(attr("Name"), Operator.MATCH_REG_EX, r"^\w+_\w$"), {"m4"}),
    (Condition(attr("Tags"), Operator.ANY_EQ, "red"), {"m1"}),
    (Condition(attr("Tags"), Operator.ANY_EQ, "purple"), set()),
    (Condition(attr("Levels"), Operator.ANY_EQ, 1.0), {"m2"}),
    (Condition(attr("Levels"), Operator.ANY_EQ, 2.5), {"m2"}),
    (Condition(attr("Dates"), Operator.ANY_EQ, datetime(2024, 3, 3, 2, 0, tzinfo=CET)), {"m2"}),
    (Condition(attr("Dates"), Operator.ANY_EQ, datetime(2024, 3, 4, tzinfo=UTC)), set()),
    (Condition(attr("Tags"), Operator.ANY_LIKE, "re%"), {"m1", "m4"}),
    (Condition(attr("Tags"), Operator.ANY_LIKE, "%E%"), {"m1", "m2", "m4"}),
    (Condition(attr("Serial"), Operator.BETWEEN, [10, 20]), {"m1", "m2"}),
    (Condition(_V, Operator.BETWEEN, [229.0, 230.5]), {"m1", "m3"}),
    (Condition(attr("Serial"), Operator.IS_NULL), {"m4", "m5"}),
    (Condition(_V, Operator.IS_NULL), {"m4", "m5"}),  # explicit null and missing
    (Condition(_V, Operator.IS_NOT_NULL), {"m1", "m2", "m3"}),
    (Condition(attr("Phase", "Voltage"), Operator.EQUALS, 231.0), {"m1"}),
    (Condition(attr("Phase", "Voltage"), Operator.LESS_THAN, 230), {"m2"}),
    (Condition(attr("Phase", "Current"), Operator.IS_NOT_NULL), {"m1"}),
    (Condition(attr("Phase", "Voltage"), Operator.IS_NULL), {"m3", "m4", "m5"}),
    (Condition(attr("Phase", "Voltage"), Operator.NOT_EQUALS, 231.0), {"m2", "m3", "m4", "m5"}),
    (
        Condition(attr("Installed"), Operator.GREATER_THAN, datetime(2024, 3, 1, tzinfo=UTC)),
        {"m2", "m3"},
    ),
    (Condition(attr("Installed"), Operator.LESS_THAN, datetime(2024, 3, 1, tzinfo=UTC)), {"m1"}),
    (Condition(attr("Installed"), Operator.EQUALS, datetime(2025, 1, 1, tzinfo=UTC)), {"m3"}),
    (
        Condition(
            attr("Installed"), Operator.EQUALS, datetime(2024, 6, 1, 14, 30, 15, 250000, tzinfo=CET)
        ),
        {"m2"},
    ),
    (
        Condition(
            attr("Installed"),
            Operator.BETWEEN,
            [
                datetime(2024, 1, 1, tzinfo=UTC),
                datetime(2024, 6, 1, 12, 30, 15, 250000, tzinfo=UTC),
            ],
        ),
        {"m1", "m2"},
    ),
    (Condition(attr("Installed"), Operator.IS_NULL), {"m4", "m5"}),
    (TextSearch("AMM", (attr("Name"), attr("Description"))), {"m3"}),
    (TextSearch("hall", (attr("Name"), attr("Description"))), {"m1"}),
    (TextSearch("a", (attr("Description"),)), {"m1", "m3"}),
    (TextSearch("10", (attr("Serial"), attr("Description"))), {"m4"}),  # strings only
    (TextSearch("ÉPS", (attr("Name"),)), {"m5"}),
    (
        Condition(attr("Name"), Operator.LIKE, "%a%"),
        {"m1", "m2", "m3", "m4"},
    ),
]


class EntityStoreContract:
    """Behaviour every entity store adapter must show. Subclasses provide ``store``."""

    # --- insert / get -----------------------------------------------------------------------

    def test_insert_then_get_many_round_trips_every_field(self, store: EntityStore) -> None:
        created = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
        entity = make_entity(
            {
                "Name": "Meter-001",
                "Count": 7,
                "Ratio": 2.0,
                "Flag": False,
                "Nothing": None,
                "Tags": ["a", "b"],
                "Phase": {"Voltage": 230.1, "Inner": {"Deep": "x"}},
                "Installed": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=CET),
                "Times": [datetime(2023, 1, 1, tzinfo=UTC)],
                "Unicode": "Grüße ✓",
                "Dollar": "$dt:2024-01-01T00:00:00.000000Z",
                "Dollars": "$$ sign",
            },
            rt_well_known_name="meter-001",
            rt_version=3,
            created=created,
        )
        insert(store, entity)
        got = store.get_many([entity.rt_id])[entity.rt_id]
        assert got == entity
        assert type(got.attributes["Count"]) is int
        assert type(got.attributes["Ratio"]) is float
        assert got.attributes["Flag"] is False
        assert got.attributes["Installed"].tzinfo is not None
        assert got.attributes["Installed"] == datetime(2024, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)
        assert got.rt_creation_datetime == created
        assert got.rt_creation_datetime.tzinfo is not None

    def test_get_many_returns_only_existing_ids(self, store: EntityStore) -> None:
        a, b = insert(store, make_entity({"Name": "a"}), make_entity({"Name": "b"}))
        found = store.get_many([a.rt_id, new_rt_id(), b.rt_id])
        assert set(found) == {a.rt_id, b.rt_id}
        assert found[b.rt_id].attributes == {"Name": "b"}
        assert store.get_many([]) == {}

    def test_get_many_hides_archived_only_when_asked(self, store: EntityStore) -> None:
        live, gone = insert(store, make_entity(), make_entity(archived=True))
        assert set(store.get_many([live.rt_id, gone.rt_id])) == {live.rt_id, gone.rt_id}
        hidden = store.get_many([live.rt_id, gone.rt_id], include_archived=False)
        assert set(hidden) == {live.rt_id}

    def test_entity_types_maps_existing_ids_to_their_types(self, store: EntityStore) -> None:
        meter = make_entity({"Name": "m"})
        site = make_entity({"Name": "s"}, ck_type_id=SITE)
        gone = make_entity({"Name": "g"}, archived=True)
        insert(store, meter, site, gone)
        ids = [meter.rt_id, site.rt_id, gone.rt_id, new_rt_id()]
        assert store.entity_types(ids) == {
            meter.rt_id: METER,
            site.rt_id: SITE,
            gone.rt_id: METER,
        }
        assert store.entity_types(ids, include_archived=False) == {
            meter.rt_id: METER,
            site.rt_id: SITE,
        }
        assert store.entity_types([]) == {}

    def test_insert_of_existing_rt_id_conflicts_and_writes_nothing(
        self, store: EntityStore
    ) -> None:
        (existing,) = insert(store, make_entity({"Name": "old"}))
        fresh = make_entity({"Name": "fresh"})
        clash = make_entity({"Name": "new"}, rt_id=existing.rt_id)
        with pytest.raises(Conflict, match=existing.rt_id):
            store.apply(WriteBatch(inserts=[fresh, clash]))
        assert store.get_many([fresh.rt_id]) == {}
        assert store.get_many([existing.rt_id])[existing.rt_id].attributes == {"Name": "old"}

    def test_insert_of_same_rt_id_twice_in_one_batch_conflicts(self, store: EntityStore) -> None:
        a = make_entity({"Name": "a"})
        b = make_entity({"Name": "b"}, rt_id=a.rt_id)
        with pytest.raises(Conflict, match=a.rt_id):
            store.apply(WriteBatch(inserts=[a, b]))
        assert store.get_many([a.rt_id]) == {}

    def test_get_by_well_known_name(self, store: EntityStore) -> None:
        live, old = insert(
            store,
            make_entity({"Name": "live"}, rt_well_known_name="main"),
            make_entity({"Name": "old"}, rt_well_known_name="retired", archived=True),
        )
        found = store.get_by_well_known_name("main")
        assert found is not None
        assert found.rt_id == live.rt_id
        assert store.get_by_well_known_name("retired") is None
        assert store.get_by_well_known_name("nope") is None
        assert old.rt_id in store.get_many([old.rt_id])

    def test_well_known_name_is_unique_among_non_archived(self, store: EntityStore) -> None:
        (first,) = insert(store, make_entity(rt_well_known_name="main"))
        with pytest.raises(Conflict, match="main"):
            insert(store, make_entity(rt_well_known_name="main"))
        archived = updated(first, archived=True)
        store.apply(WriteBatch(updates=[(archived, 1)]))
        (second,) = insert(store, make_entity(rt_well_known_name="main"))
        found = store.get_by_well_known_name("main")
        assert found is not None
        assert found.rt_id == second.rt_id
        # several archived entities may share a name
        store.apply(WriteBatch(updates=[(updated(second, archived=True), 1)]))
        assert store.get_by_well_known_name("main") is None

    # --- update / erase -----------------------------------------------------------------------

    def test_update_replaces_the_whole_entity(self, store: EntityStore) -> None:
        (entity,) = insert(store, make_entity({"Name": "a", "Serial": 1}))
        new = updated(entity, attributes={"Name": "b"}, rt_well_known_name="wk")
        store.apply(WriteBatch(updates=[(new, 1)]))
        got = store.get_many([entity.rt_id])[entity.rt_id]
        assert got == new
        assert got.rt_version == 2
        assert "Serial" not in got.attributes

    def test_update_with_stale_version_conflicts(self, store: EntityStore) -> None:
        (entity,) = insert(store, make_entity({"Name": "a"}, rt_version=41))
        with pytest.raises(Conflict) as info:
            store.apply(WriteBatch(updates=[(updated(entity, attributes={"Name": "b"}), 37)]))
        message = str(info.value)
        assert entity.rt_id in message
        assert "37" in message
        assert "41" in message
        assert "re-read" in message.lower()
        assert store.get_many([entity.rt_id])[entity.rt_id].attributes == {"Name": "a"}

    def test_update_without_expected_version_skips_the_check(self, store: EntityStore) -> None:
        (entity,) = insert(store, make_entity({"Name": "a"}, rt_version=9))
        store.apply(WriteBatch(updates=[(updated(entity, attributes={"Name": "b"}), None)]))
        got = store.get_many([entity.rt_id])[entity.rt_id]
        assert got.attributes == {"Name": "b"}
        assert got.rt_version == 10

    def test_update_of_missing_entity_is_not_found(self, store: EntityStore) -> None:
        ghost = make_entity({"Name": "ghost"})
        with pytest.raises(NotFound, match=ghost.rt_id):
            store.apply(WriteBatch(updates=[(ghost, None)]))
        assert store.get_many([ghost.rt_id]) == {}

    def test_erase_removes_entity_and_its_associations(self, store: EntityStore) -> None:
        meter, building, site = insert(
            store, make_entity(), make_entity(ck_type_id=BUILDING), make_entity(ck_type_id=SITE)
        )
        store.apply(WriteBatch(add_associations=[link(meter, building), link(building, site)]))
        store.apply(WriteBatch(erase=[building.rt_id]))
        assert set(store.get_many([meter.rt_id, building.rt_id, site.rt_id])) == {
            meter.rt_id,
            site.rt_id,
        }
        assert store.associations([meter.rt_id], "outbound") == []
        assert store.associations([site.rt_id], "inbound") == []
        assert store.associations([building.rt_id], "outbound") == []

    def test_archived_entities_are_hidden_from_find_unless_asked(self, store: EntityStore) -> None:
        live, gone = insert(store, make_entity(), make_entity(archived=True))
        assert _ids(store.find(EntityQuery())) == [live.rt_id]
        assert store.count(EntityQuery()) == 1
        everything = store.find(EntityQuery(include_archived=True))
        assert sorted(_ids(everything)) == sorted([live.rt_id, gone.rt_id])
        assert store.count(EntityQuery(include_archived=True)) == 2
        store.apply(WriteBatch(updates=[(updated(live, archived=True), 1)]))
        assert store.find(EntityQuery()).items == []

    # --- filters ------------------------------------------------------------------------------

    @pytest.fixture
    def operator_data(self, store: EntityStore) -> dict[str, str]:
        """The operator data set inserted (plus an archived decoy); label -> rtId."""
        entities = {
            label: make_entity({**attrs, "Key": label}) for label, attrs in _OPERATOR_DATA.items()
        }
        decoy = make_entity({**_OPERATOR_DATA["m1"], "Key": "archived"}, archived=True)
        other = make_entity({**_OPERATOR_DATA["m1"], "Key": "building"}, ck_type_id=BUILDING)
        insert(store, *entities.values(), decoy, other)
        return {label: e.rt_id for label, e in entities.items()}

    @pytest.mark.parametrize(("condition", "expected"), _OPERATOR_CASES, ids=repr)
    def test_operator(
        self,
        store: EntityStore,
        operator_data: dict[str, str],
        condition: Filter,
        expected: set[str],
    ) -> None:
        query = EntityQuery(type_ids=(METER,), filters=(condition,))
        page = store.find(query)
        labels = {e.attributes["Key"] for e in page.items}
        assert labels == expected
        assert store.count(query) == len(expected)

    def test_filters_combine_with_and(
        self, store: EntityStore, operator_data: dict[str, str]
    ) -> None:
        query = EntityQuery(
            filters=(
                Condition(attr("Voltage"), Operator.GREATER_THAN, 229.5),
                Condition(attr("Tags"), Operator.ANY_LIKE, "%e%"),
                Condition(attr("Active"), Operator.EQUALS, False),
            ),
            type_ids=(METER,),
        )
        assert _ids(store.find(query)) == [operator_data["m2"]]

    @pytest.mark.parametrize(
        ("operator", "value", "expected"),
        [
            (Operator.GREATER_THAN, 350.0, ["low"]),
            (Operator.LESS_THAN, 100.0, ["low", "high"]),
            (Operator.EQUALS, 230.0, ["mid"]),
            (Operator.NOT_EQUALS, 230.0, ["low", "high", "none"]),
            (Operator.IN, [5.0, 300.0], ["low", "high"]),
            (Operator.NOT_IN, [5.0, 300.0], ["mid", "none"]),
            # BETWEEN must hold for one and the same element: 'low' has 5 and 400, none between
            (Operator.BETWEEN, [200.0, 260.0], ["mid"]),
            (Operator.LIKE, "%", []),
        ],
    )
    def test_paths_through_record_arrays_match_any_element(
        self, store: EntityStore, operator: Operator, value: Any, expected: list[str]
    ) -> None:
        names = {}
        for name, phases in (
            ("low", [{"Voltage": 5.0}, {"Voltage": 400.0, "Current": 1.0}]),
            ("mid", [{"Voltage": 230.0}]),
            ("high", [{"Voltage": 300.0}, {"Voltage": 50.0}]),
            ("none", []),
        ):
            entity = make_entity({"Name": name, "Phases": phases})
            insert(store, entity)
            names[entity.rt_id] = name
        query = EntityQuery(
            filters=(Condition(attr("Phases", ANY_ELEMENT, "Voltage"), operator, value),),
            type_ids=(METER,),
            sort=(SortKey(attr("Name")),),
        )
        if operator is Operator.BETWEEN and not store.supports_element_match():
            with pytest.raises(ValidationError, match="same element"):
                store.find(query)
            return
        found = [names[e.rt_id] for e in store.find(query).items]
        assert sorted(found) == sorted(expected)

    def test_system_field_conditions(self, store: EntityStore) -> None:
        a = make_entity({"Name": "a"}, rt_well_known_name="Pump-A", rt_version=1)
        b = make_entity({"Name": "b"}, rt_well_known_name="pump-b", rt_version=5)
        c = make_entity({"Name": "c"}, ck_type_id=BUILDING, rt_version=2)
        insert(store, a, b, c)

        def ids(*filters: Filter) -> set[str]:
            return set(_ids(store.find(EntityQuery(filters=filters))))

        assert ids(Condition(("ckTypeId",), Operator.EQUALS, BUILDING)) == {c.rt_id}
        assert ids(Condition(("rtVersion",), Operator.GREATER_THAN, 1)) == {b.rt_id, c.rt_id}
        assert ids(Condition(("rtWellKnownName",), Operator.LIKE, "pump-%")) == {a.rt_id, b.rt_id}
        assert ids(Condition(("rtWellKnownName",), Operator.IS_NULL)) == {c.rt_id}
        assert ids(Condition(("rtId",), Operator.IN, [a.rt_id, c.rt_id])) == {a.rt_id, c.rt_id}
        assert ids(
            Condition(("rtCreationDateTime",), Operator.LESS_EQUAL_THAN, b.rt_creation_datetime)
        ) == {a.rt_id, b.rt_id}
        assert ids(
            Condition(("rtChangedDateTime",), Operator.GREATER_THAN, b.rt_changed_datetime)
        ) == {c.rt_id}

    def test_invalid_queries_raise_validation_error(self, store: EntityStore) -> None:
        insert(store, make_entity({"Name": "a"}))
        bad: list[Filter] = [
            Condition(("nope",), Operator.EQUALS, 1),
            Condition((), Operator.EQUALS, 1),
            Condition(attr("Name"), Operator.MATCH_REG_EX, "(unclosed"),
            Condition(attr("Name"), Operator.BETWEEN, [1]),
            Condition(attr("Name"), Operator.IN, "abc"),
        ]
        for condition in bad:
            with pytest.raises(ValidationError):
                store.find(EntityQuery(filters=(condition,)))
        with pytest.raises(ValidationError):
            store.find(EntityQuery(sort=(SortKey(("nope",)),)))

    def test_type_ids_and_rt_ids_restrict(self, store: EntityStore) -> None:
        m, b, s = insert(
            store, make_entity(), make_entity(ck_type_id=BUILDING), make_entity(ck_type_id=SITE)
        )
        assert set(_ids(store.find(EntityQuery(type_ids=(METER, SITE))))) == {m.rt_id, s.rt_id}
        assert store.find(EntityQuery(type_ids=())).items == []
        assert store.count(EntityQuery(type_ids=(BUILDING,))) == 1
        by_id = EntityQuery(rt_ids=(b.rt_id, s.rt_id, new_rt_id()))
        assert set(_ids(store.find(by_id))) == {b.rt_id, s.rt_id}
        both = EntityQuery(rt_ids=(m.rt_id, b.rt_id), type_ids=(BUILDING,))
        assert _ids(store.find(both)) == [b.rt_id]
        assert store.find(EntityQuery(rt_ids=())).items == []

    # --- associations -------------------------------------------------------------------------

    @pytest.fixture
    def topology(self, store: EntityStore) -> dict[str, StoredEntity]:
        """site-a <- hall-1 <- (m1, m2); site-b <- hall-2 <- m3; hall-3 (archived) <- m4;
        m5 unlinked; m1 supplies m2."""
        e = {
            "site-a": make_entity({"Name": "Site A"}, ck_type_id=SITE),
            "site-b": make_entity({"Name": "Site B"}, ck_type_id=SITE),
            "hall-1": make_entity({"Name": "Hall 1"}, ck_type_id=BUILDING),
            "hall-2": make_entity({"Name": "Hall 2"}, ck_type_id=BUILDING),
            "hall-3": make_entity({"Name": "Hall 1"}, ck_type_id=BUILDING, archived=True),
            "m1": make_entity({"Name": "m1", "Serial": 10}),
            "m2": make_entity({"Name": "m2", "Serial": 20}),
            "m3": make_entity({"Name": "m3", "Serial": 10}),
            "m4": make_entity({"Name": "m4", "Serial": 10}),
            "m5": make_entity({"Name": "m5"}),
        }
        insert(store, *e.values())
        store.apply(
            WriteBatch(
                add_associations=[
                    link(e["hall-1"], e["site-a"]),
                    link(e["hall-2"], e["site-b"]),
                    link(e["m1"], e["hall-1"]),
                    link(e["m2"], e["hall-1"]),
                    link(e["m3"], e["hall-2"]),
                    link(e["m4"], e["hall-3"]),
                    link(e["m1"], e["m2"], SUPPLIES),
                ]
            )
        )
        return e

    def _names(self, store: EntityStore, query: EntityQuery) -> set[str]:
        return {e.attributes["Name"] for e in store.find(query).items}

    def test_association_condition_outbound(
        self, store: EntityStore, topology: dict[str, StoredEntity]
    ) -> None:
        hall_1 = AssociationCondition(
            PARENT, "outbound", (Condition(attr("Name"), Operator.EQUALS, "Hall 1"),)
        )
        query = EntityQuery(type_ids=(METER,), filters=(hall_1,))
        assert self._names(store, query) == {"m1", "m2"}  # m4's parent is archived
        any_parent = AssociationCondition(PARENT, "outbound")
        assert self._names(store, EntityQuery(type_ids=(METER,), filters=(any_parent,))) == {
            "m1",
            "m2",
            "m3",
        }
        wrong_role = AssociationCondition(
            SUPPLIES, "outbound", (Condition(attr("Name"), Operator.EQUALS, "Hall 1"),)
        )
        assert self._names(store, EntityQuery(filters=(wrong_role,))) == set()

    def test_association_condition_inbound(
        self, store: EntityStore, topology: dict[str, StoredEntity]
    ) -> None:
        child_10 = AssociationCondition(
            PARENT, "inbound", (Condition(attr("Serial"), Operator.EQUALS, 10),)
        )
        assert self._names(store, EntityQuery(filters=(child_10,))) == {"Hall 1", "Hall 2"}
        archived_too = EntityQuery(filters=(child_10,), include_archived=True)
        names = [e.attributes["Name"] for e in store.find(archived_too).items]
        assert sorted(names) == ["Hall 1", "Hall 1", "Hall 2"]
        supplied = AssociationCondition(SUPPLIES, "inbound")
        assert self._names(store, EntityQuery(filters=(supplied,))) == {"m2"}

    def test_association_condition_nested(
        self, store: EntityStore, topology: dict[str, StoredEntity]
    ) -> None:
        in_site_a = AssociationCondition(
            PARENT,
            "outbound",
            (
                Condition(("ckTypeId",), Operator.EQUALS, BUILDING),
                AssociationCondition(
                    PARENT, "outbound", (Condition(attr("Name"), Operator.EQUALS, "Site A"),)
                ),
            ),
        )
        assert self._names(store, EntityQuery(filters=(in_site_a,))) == {"m1", "m2"}
        # sites having a building that has a meter with serial 20
        with_meter_20 = AssociationCondition(
            PARENT,
            "inbound",
            (
                AssociationCondition(
                    PARENT, "inbound", (Condition(attr("Serial"), Operator.EQUALS, 20),)
                ),
            ),
        )
        assert self._names(store, EntityQuery(filters=(with_meter_20,))) == {"Site A"}
        combined = EntityQuery(
            filters=(in_site_a, Condition(attr("Serial"), Operator.EQUALS, 20)),
        )
        assert self._names(store, combined) == {"m2"}

    def test_associations_lookup(
        self, store: EntityStore, topology: dict[str, StoredEntity]
    ) -> None:
        e = topology

        def triples(links: list[StoredAssociation]) -> set[tuple[str, str, str]]:
            return {(a.role_id, a.source_rt_id, a.target_rt_id) for a in links}

        m1, m2, hall_1 = e["m1"].rt_id, e["m2"].rt_id, e["hall-1"].rt_id
        assert triples(store.associations([m1], "outbound")) == {
            (PARENT, m1, hall_1),
            (SUPPLIES, m1, m2),
        }
        assert triples(store.associations([m1], "outbound", PARENT)) == {(PARENT, m1, hall_1)}
        assert triples(store.associations([hall_1], "inbound")) == {
            (PARENT, m1, hall_1),
            (PARENT, m2, hall_1),
        }
        assert triples(store.associations([hall_1, m2], "inbound", SUPPLIES)) == {
            (SUPPLIES, m1, m2)
        }
        assert store.associations([], "outbound") == []
        full = store.associations([m2], "inbound", SUPPLIES)
        assert full == [
            StoredAssociation(SUPPLIES, m1, METER, m2, METER),
        ]

    def test_add_existing_association_is_a_no_op_and_remove_works(
        self, store: EntityStore, topology: dict[str, StoredEntity]
    ) -> None:
        e = topology
        again = link(e["m1"], e["hall-1"])
        store.apply(WriteBatch(add_associations=[again, again]))
        assert len(store.associations([e["m1"].rt_id], "outbound", PARENT)) == 1
        store.apply(WriteBatch(remove_associations=[again, link(e["m5"], e["hall-1"])]))
        assert store.associations([e["m1"].rt_id], "outbound", PARENT) == []
        assert len(store.associations([e["m1"].rt_id], "outbound")) == 1

    # --- sorting and paging -------------------------------------------------------------------

    @pytest.fixture
    def sortable(self, store: EntityStore) -> list[StoredEntity]:
        """20 meters with repeated, missing, int/float-mixed and datetime sort values."""
        entities = []
        for i in range(20):
            attributes: dict[str, Any] = {"Name": f"m{i:02d}"}
            if i % 4:
                attributes["Group"] = ["b", "a", "c"][i % 3]
            if i % 5:
                attributes["Value"] = (i % 6) * 1.5 if i % 2 else i % 6
            if i % 3:
                attributes["At"] = datetime(2024, 1, 1 + i % 7, tzinfo=UTC)
            if i % 7:
                attributes["Phase"] = {"Voltage": 230 + i % 3}
            entities.append(make_entity(attributes))
        entities.append(make_entity({"Name": "hidden", "Group": "a"}, archived=True))
        insert(store, *entities)
        return entities[:-1]

    _SORTS: tuple[tuple[SortKey, ...], ...] = (
        (),
        (SortKey(attr("Name")),),
        (SortKey(attr("Group")),),
        (SortKey(attr("Group"), descending=True),),
        (SortKey(attr("Group")), SortKey(attr("Value"), descending=True)),
        (SortKey(attr("Group"), descending=True), SortKey(attr("Value"))),
        (SortKey(attr("Value")), SortKey(attr("At"), descending=True)),
        (SortKey(attr("At")),),
        (SortKey(attr("Phase", "Voltage"), descending=True), SortKey(attr("Group"))),
        (SortKey(("rtCreationDateTime",), descending=True),),
        (SortKey(("rtId",), descending=True),),
    )

    @pytest.mark.parametrize("sort", _SORTS, ids=repr)
    def test_sort_orders_missing_first_ascending_last_descending(
        self, store: EntityStore, sortable: list[StoredEntity], sort: tuple[SortKey, ...]
    ) -> None:
        page = store.find(EntityQuery(sort=sort))
        assert _ids(page) == expected_order(sortable, sort)
        assert page.has_next_page is False

    @pytest.mark.parametrize("sort", _SORTS, ids=repr)
    @pytest.mark.parametrize("page_size", [1, 3, 7, 20])
    def test_keyset_paging_walks_the_full_sorted_list(
        self,
        store: EntityStore,
        sortable: list[StoredEntity],
        sort: tuple[SortKey, ...],
        page_size: int,
    ) -> None:
        walked = find_all(store, EntityQuery(sort=sort), page_size)
        assert _ids(walked) == expected_order(sortable, sort)

    def test_each_item_cursor_resumes_after_that_item(
        self, store: EntityStore, sortable: list[StoredEntity]
    ) -> None:
        sort = (SortKey(attr("Group"), descending=True), SortKey(attr("Value")))
        full = store.find(EntityQuery(sort=sort))
        for i, cursor in enumerate(full.cursors):
            rest = store.find(EntityQuery(sort=sort, after=cursor))
            assert _ids(rest) == _ids(full)[i + 1 :]
        assert full.end_cursor == full.cursors[-1]

    def test_first_limits_and_reports_next_page(
        self, store: EntityStore, sortable: list[StoredEntity]
    ) -> None:
        page = store.find(EntityQuery(first=5))
        assert len(page.items) == 5
        assert page.has_next_page is True
        exact = store.find(EntityQuery(first=20))
        assert len(exact.items) == 20
        assert exact.has_next_page is False
        assert store.find(EntityQuery(first=None)).has_next_page is False
        empty = store.find(EntityQuery(filters=(Condition(attr("Name"), Operator.EQUALS, "x"),)))
        assert empty.items == []
        assert empty.end_cursor is None
        assert empty.has_next_page is False

    def test_paging_is_stable_under_concurrent_inserts(self, store: EntityStore) -> None:
        originals = [make_entity({"Rank": rank * 10}) for rank in range(1, 11)]
        insert(store, *originals)
        sort = (SortKey(attr("Rank")),)
        page = store.find(EntityQuery(sort=sort, first=4))
        seen = _ids(page)
        # ranks 10..40 seen; insert before, at, and after the cursor position
        before = make_entity({"Rank": 15})
        tie = make_entity({"Rank": 40})
        after = make_entity({"Rank": 45})
        last = make_entity({"Rank": 1000})
        insert(store, before, tie, after, last)
        cursor = page.end_cursor
        while True:
            page = store.find(EntityQuery(sort=sort, first=3, after=cursor))
            seen.extend(_ids(page))
            if not page.has_next_page:
                break
            insert(store, make_entity({"Rank": 1}))  # always behind the cursor now
            cursor = page.end_cursor
        assert len(seen) == len(set(seen)), "an item was returned twice"
        assert set(seen) >= {e.rt_id for e in originals}, "an item was skipped"
        assert before.rt_id not in seen
        assert after.rt_id in seen
        assert last.rt_id in seen
        # the tie is seen exactly when its rtId sorts after the cursor row's rtId
        cursor_row = originals[3]
        assert (tie.rt_id in seen) == (tie.rt_id > cursor_row.rt_id)
        everything = {e.rt_id: e for e in store.find(EntityQuery()).items}
        assert _ids([everything[i] for i in seen]) == expected_order(
            [everything[i] for i in seen], sort
        )

    def test_cursor_from_another_sort_is_rejected(
        self, store: EntityStore, sortable: list[StoredEntity]
    ) -> None:
        by_name = store.find(EntityQuery(sort=(SortKey(attr("Name")),), first=2))
        assert by_name.end_cursor is not None
        for other in (
            (SortKey(attr("Group")), SortKey(attr("Name"))),  # more keys
            (),  # fewer keys
            (SortKey(attr("Group")),),  # same number of keys
            (SortKey(attr("Name"), descending=True),),  # other direction
        ):
            with pytest.raises(ValidationError, match="sort"):
                store.find(EntityQuery(sort=other, after=by_name.end_cursor))
        with pytest.raises(ValidationError):
            store.find(EntityQuery(after="not-a-cursor!"))

    def test_count_and_total_count(self, store: EntityStore, sortable: list[StoredEntity]) -> None:
        grouped = Condition(attr("Group"), Operator.EQUALS, "a")
        expected = sum(1 for e in sortable if e.attributes.get("Group") == "a")
        query = EntityQuery(filters=(grouped,), first=2)
        assert store.count(query) == expected
        page = store.find(query)
        assert page.total_count is None
        counted = store.find(EntityQuery(filters=(grouped,), first=2, include_total=True))
        assert counted.total_count == expected
        second = store.find(
            EntityQuery(filters=(grouped,), first=2, include_total=True, after=counted.end_cursor)
        )
        assert second.total_count == expected
        assert store.count(EntityQuery()) == 20
        assert store.count(EntityQuery(include_archived=True)) == 21

    # --- batches ------------------------------------------------------------------------------

    @pytest.fixture
    def populated(self, store: EntityStore) -> dict[str, StoredEntity]:
        """Two meters linked to a building, a unique serial index and some meta documents."""
        store.ensure_indexes([_serial_index("unique")])
        e = {
            "a": make_entity({"Serial": "S-1"}, rt_well_known_name="meter-a"),
            "b": make_entity({"Serial": "S-2"}),
            "hall": make_entity({"Name": "Hall"}, ck_type_id=BUILDING),
        }
        insert(store, *e.values())
        store.apply(
            WriteBatch(
                add_associations=[link(e["a"], e["hall"])],
                meta=[MetaWrite("libs", "one", {"v": 1}), MetaWrite("libs", "two", {"v": 2})],
            )
        )
        return e

    _FAILURES = (
        "existing-id",
        "stale-version",
        "missing-update",
        "unique-index",
        "well-known-name",
    )

    @pytest.mark.parametrize("failure", _FAILURES)
    def test_a_failing_batch_leaves_the_store_unchanged(
        self, store: EntityStore, populated: dict[str, StoredEntity], failure: str
    ) -> None:
        e = populated
        newcomer = make_entity({"Serial": "S-9"})
        ids = [e["a"].rt_id, e["b"].rt_id, e["hall"].rt_id, newcomer.rt_id]
        before = snapshot(store, ids, ["libs", "other"])
        batch = WriteBatch(
            inserts=[newcomer],
            updates=[(updated(e["b"], attributes={"Serial": "S-3"}), 1)],
            erase=[e["hall"].rt_id],
            add_associations=[link(newcomer, e["a"])],
            remove_associations=[link(e["a"], e["hall"])],
            meta=[
                MetaWrite("libs", "one", None),
                MetaWrite("libs", "two", {"v": 3}),
                MetaWrite("other", "x", {"y": 1}),
            ],
        )
        expected_error: type[Exception] = Conflict
        if failure == "existing-id":
            batch.inserts.append(make_entity(rt_id=e["a"].rt_id))
        elif failure == "stale-version":
            batch.updates.append((updated(e["a"], attributes={"Serial": "S-7"}), 5))
        elif failure == "missing-update":
            batch.updates.append((make_entity(), 1))
            expected_error = NotFound
        elif failure == "unique-index":
            batch.inserts.append(make_entity({"Serial": "S-1"}))
        else:
            batch.inserts.append(make_entity(rt_well_known_name="meter-a"))
        with pytest.raises(expected_error):
            store.apply(batch)
        assert snapshot(store, ids, ["libs", "other"]) == before

    def test_unique_values_are_checked_against_the_state_after_the_batch(
        self, store: EntityStore, populated: dict[str, StoredEntity]
    ) -> None:
        e = populated
        swap = WriteBatch(
            updates=[
                (updated(e["a"], attributes={"Serial": "S-2"}, rt_well_known_name="x"), 1),
                (updated(e["b"], attributes={"Serial": "S-1"}, rt_well_known_name="meter-a"), 1),
            ]
        )
        store.apply(swap)
        got = store.get_many([e["a"].rt_id, e["b"].rt_id])
        assert got[e["a"].rt_id].attributes["Serial"] == "S-2"
        assert got[e["b"].rt_id].attributes["Serial"] == "S-1"
        replacement = make_entity({"Serial": "S-2"}, rt_well_known_name="x")
        store.apply(WriteBatch(erase=[e["a"].rt_id], inserts=[replacement]))
        found = store.get_by_well_known_name("x")
        assert found is not None
        assert found.rt_id == replacement.rt_id

    # --- indexes ------------------------------------------------------------------------------

    def test_unique_index_rejects_duplicates_of_covered_types(self, store: EntityStore) -> None:
        store.ensure_indexes([_serial_index("unique")])
        insert(store, make_entity({"Serial": "S-1"}), make_entity({"Other": 1}))
        with pytest.raises(Conflict) as info:
            insert(store, make_entity({"Serial": "S-1"}))
        assert "S-1" in str(info.value)
        assert "serial" in str(info.value).lower()
        with pytest.raises(Conflict):
            insert(store, make_entity({"Serial": "S-2"}), make_entity({"Serial": "S-2"}))
        # other types are not covered; entities without the value do not collide
        insert(
            store, make_entity({"Serial": "S-1"}, ck_type_id=BUILDING), make_entity({"Other": 2})
        )
        # archiving does not free a value of a plain unique index
        (entity,) = store.find(
            EntityQuery(
                type_ids=(METER,), filters=(Condition(attr("Serial"), Operator.EQUALS, "S-1"),)
            )
        ).items
        store.apply(WriteBatch(updates=[(updated(entity, archived=True), 1)]))
        with pytest.raises(Conflict):
            insert(store, make_entity({"Serial": "S-1"}))

    def test_unique_not_deleted_index_is_freed_by_archiving(self, store: EntityStore) -> None:
        store.ensure_indexes([_serial_index("unique_not_deleted")])
        (first,) = insert(store, make_entity({"Serial": "S-1"}))
        with pytest.raises(Conflict, match="S-1"):
            insert(store, make_entity({"Serial": "S-1"}))
        store.apply(WriteBatch(updates=[(updated(first, archived=True), 1)]))
        (second,) = insert(store, make_entity({"Serial": "S-1"}))
        # un-archiving the first would duplicate the value
        with pytest.raises(Conflict, match="S-1"):
            store.apply(WriteBatch(updates=[(updated(first, archived=False), 2)]))
        assert store.get_many([second.rt_id])[second.rt_id].archived is False

    def test_compound_unique_index(self, store: EntityStore) -> None:
        spec = IndexSpec("meter_site_serial", "unique", (METER,), (attr("Site"), attr("Serial")))
        store.ensure_indexes([spec])
        insert(
            store, make_entity({"Site": "A", "Serial": 1}), make_entity({"Site": "B", "Serial": 1})
        )
        with pytest.raises(Conflict):
            insert(store, make_entity({"Site": "A", "Serial": 1}))

    def test_ensure_indexes_is_idempotent_and_drops_unlisted(self, store: EntityStore) -> None:
        specs = [
            _serial_index("unique"),
            IndexSpec("meter_name", "ascending", (METER, BUILDING), (attr("Name"),)),
            IndexSpec("meter_text", "text", (METER,), (attr("Description"),)),
            IndexSpec("phase", "ascending", (METER,), (attr("Phase", "Voltage"), ("rtId",))),
        ]
        store.ensure_indexes(specs)
        store.ensure_indexes(specs)
        insert(store, make_entity({"Serial": "S-1", "Name": "n", "Phase": {"Voltage": 1}}))
        with pytest.raises(Conflict):
            insert(store, make_entity({"Serial": "S-1"}))
        # indexed filters and sorts still answer correctly
        query = EntityQuery(
            type_ids=(METER,),
            filters=(Condition(attr("Name"), Operator.EQUALS, "n"),),
            sort=(SortKey(attr("Phase", "Voltage")),),
        )
        assert len(store.find(query).items) == 1
        store.ensure_indexes(specs[1:])
        insert(store, make_entity({"Serial": "S-1"}))
        assert (
            store.count(EntityQuery(filters=(Condition(attr("Serial"), Operator.EQUALS, "S-1"),)))
            == 2
        )

    def test_ensure_indexes_conflicts_on_existing_duplicates_and_changes_nothing(
        self, store: EntityStore
    ) -> None:
        name_index = IndexSpec("meter_name", "unique", (METER,), (attr("Name"),))
        store.ensure_indexes([name_index])
        insert(
            store,
            make_entity({"Name": "a", "Serial": "dup"}),
            make_entity({"Name": "b", "Serial": "dup"}),
        )
        with pytest.raises(Conflict) as info:
            store.ensure_indexes([_serial_index("unique")])  # would also drop meter_name
        assert "dup" in str(info.value)
        assert "serial" in str(info.value).lower()
        with pytest.raises(Conflict):
            insert(store, make_entity({"Name": "a"}))  # meter_name still enforced
        (one, _) = store.find(
            EntityQuery(filters=(Condition(attr("Serial"), Operator.EQUALS, "dup"),))
        ).items
        store.apply(WriteBatch(updates=[(updated(one, archived=True), 1)]))
        store.ensure_indexes([name_index, _serial_index("unique_not_deleted")])
        with pytest.raises(Conflict, match="dup"):
            insert(store, make_entity({"Name": "c", "Serial": "dup"}))

    # --- meta ---------------------------------------------------------------------------------

    def test_meta_put_get_list_delete(self, store: EntityStore) -> None:
        assert store.get_meta("libs", "x") is None
        assert store.list_meta("libs") == {}
        doc = {"name": "Demo", "version": [1, 2], "nested": {"a": None, "b": 1.5, "c": True}}
        store.put_meta("libs", "demo", doc)
        store.put_meta("libs", "other", {"n": 1})
        store.put_meta("migrations", "demo", {"n": 2})
        assert store.get_meta("libs", "demo") == doc
        assert store.list_meta("libs") == {"demo": doc, "other": {"n": 1}}
        store.put_meta("libs", "other", {"n": 3})
        assert store.get_meta("libs", "other") == {"n": 3}
        store.put_meta("libs", "demo", None)
        store.put_meta("libs", "never-there", None)
        assert store.get_meta("libs", "demo") is None
        assert store.list_meta("libs") == {"other": {"n": 3}}
        assert store.list_meta("migrations") == {"demo": {"n": 2}}

    def test_meta_and_entities_in_one_batch(self, store: EntityStore) -> None:
        entity = make_entity()
        store.apply(WriteBatch(inserts=[entity], meta=[MetaWrite("libs", "k", {"at": "now"})]))
        assert entity.rt_id in store.get_many([entity.rt_id])
        assert store.get_meta("libs", "k") == {"at": "now"}

    def test_empty_batch_is_a_no_op(self, store: EntityStore) -> None:
        store.apply(WriteBatch())
        assert store.count(EntityQuery(include_archived=True)) == 0

    def test_supports_transactions_is_declared(self, store: EntityStore) -> None:
        assert isinstance(store.supports_transactions(), bool)


def updated(entity: StoredEntity, **changes: Any) -> StoredEntity:
    """A copy of ``entity`` with ``changes``, ``rt_version`` incremented and the change time
    one second later (unless given in ``changes``)."""
    defaults: dict[str, Any] = {
        "attributes": dict(entity.attributes),
        "rt_version": entity.rt_version + 1,
        "rt_changed_datetime": entity.rt_changed_datetime + timedelta(seconds=1),
    }
    return dataclasses.replace(entity, **{**defaults, **changes})


def _serial_index(kind: Any) -> IndexSpec:
    return IndexSpec("meter_serial", kind, (METER,), (attr("Serial"),))
