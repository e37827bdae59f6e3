"""The runtime service against a real tenant (SQLite): validation, associations, deletes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BUILDING, METER_1, METER_2, SITE
from workbench.errors import Conflict, NotFound, ValidationError
from workbench.runtime.entity import AssociationInput, EntityInput

METER = "Demo.Energy/EnergyMeter"


def _meter(serial: str, **extra: Any) -> dict[str, Any]:
    return {"name": f"Meter {serial}", "serialNumber": serial, "state": "Active", **extra}


def test_sample_entities_are_imported(demo: Any) -> None:
    meter = demo.entities.get(METER_1)
    assert meter.ck_type_id == METER
    assert meter.rt_well_known_name == "meter-001"
    assert meter["state"] == "Active"
    assert meter["voltage"] == 231.5
    assert meter["phaseL1"]["voltage"] == 230.9
    assert meter["tags"] == ["main", "hall-a"]
    assert meter.rt_version == 1
    assert [e.rt_id for e in demo.entities.navigate(METER_1, "parent")] == [BUILDING]
    assert {e.rt_id for e in demo.entities.navigate(BUILDING, "children")} == {METER_1, METER_2}
    assert [e.rt_id for e in demo.entities.navigate(METER_2, "suppliedBy")] == [METER_1]
    assert [e.rt_id for e in demo.entities.navigate(METER_1, "supplies")] == [METER_2]


def test_create_validates_type_and_attributes(demo: Any) -> None:
    entities = demo.entities
    with pytest.raises(ValidationError, match=r"not in this tenant's model"):
        entities.create("Demo.Energy/Nope", {"name": "x"})
    with pytest.raises(ValidationError, match="abstract"):
        entities.create("Demo.Energy/Meter", _meter("EM-9"), associations=[("parent", BUILDING)])
    with pytest.raises(ValidationError, match="voltage") as info:
        entities.create(METER, _meter("EM-9", voltage="abc"), associations=[("parent", BUILDING)])
    assert "expects a number" in str(info.value)
    with pytest.raises(ValidationError, match=r"serialNumber|SerialNumber"):
        entities.create(
            METER, {"name": "m", "state": "Active"}, associations=[("parent", BUILDING)]
        )
    with pytest.raises(ValidationError, match="bogus"):
        entities.create(METER, _meter("EM-9", bogus=1), associations=[("parent", BUILDING)])
    assert entities.count(METER) == 2


def test_required_parent_and_target_type(demo: Any) -> None:
    entities = demo.entities
    with pytest.raises(ValidationError, match="exactly one 'Parent'"):
        entities.create(METER, _meter("EM-10"))
    with pytest.raises(ValidationError, match=r"must be a Demo\.Energy/Building"):
        entities.create(METER, _meter("EM-10"), associations=[("parent", SITE)])
    with pytest.raises(ValidationError, match="does not exist"):
        entities.create(METER, _meter("EM-10"), associations=[("parent", "ab" * 12)])
    created = entities.create(
        METER, _meter("EM-10"), associations=[("System/ParentChild", BUILDING)]
    )
    assert [e.rt_id for e in entities.navigate(created.rt_id, "parent")] == [BUILDING]


def test_zero_or_one_multiplicity(demo: Any) -> None:
    third = demo.entities.create(METER, _meter("EM-11"), associations=[("parent", BUILDING)])
    with pytest.raises(ValidationError, match="at most one 'SuppliedBy'"):
        demo.entities.link(METER_2, "Demo.Energy/Supplies", third.rt_id)
    assert [e.rt_id for e in demo.entities.navigate(METER_2, "suppliedBy")] == [METER_1]


def test_batch_is_atomic(demo: Any) -> None:
    good = EntityInput(METER, _meter("EM-20"), associations=[AssociationInput("parent", BUILDING)])
    bad = EntityInput(
        METER, _meter("EM-21", voltage="x"), associations=[AssociationInput("parent", BUILDING)]
    )
    with pytest.raises(ValidationError) as info:
        demo.entities.create_many([good, bad])
    assert "entities[1]" in str(info.value)
    assert demo.entities.count(METER) == 2


def test_batch_may_link_to_entities_created_in_the_same_batch(demo: Any) -> None:
    site = EntityInput("Demo.Energy/Site", {"name": "New site"}, rt_id="aa" * 12)
    hall = EntityInput(
        "Demo.Energy/Building",
        {"name": "New hall"},
        rt_id="bb" * 12,
        associations=[AssociationInput("parent", "aa" * 12)],
    )
    created = demo.entities.create_many([hall, site])
    assert [e.rt_id for e in created] == ["bb" * 12, "aa" * 12]
    assert [e.rt_id for e in demo.entities.navigate("bb" * 12, "parent")] == ["aa" * 12]


def test_update_and_optimistic_concurrency(demo: Any) -> None:
    meter = demo.entities.get(METER_1)
    updated = demo.entities.update(METER_1, {"voltage": 229.0}, rt_version=meter.rt_version)
    assert updated.rt_version == meter.rt_version + 1
    assert updated["voltage"] == 229.0
    assert updated["serialNumber"] == "EM-0001"
    with pytest.raises(Conflict, match="rtVersion"):
        demo.entities.update(METER_1, {"voltage": 1.0}, rt_version=meter.rt_version)
    assert demo.entities.get(METER_1)["voltage"] == 229.0
    removed = demo.entities.update(METER_1, {"voltage": None})
    assert "voltage" not in removed.attributes or removed["voltage"] is None
    with pytest.raises(ValidationError, match="required"):
        demo.entities.update(METER_1, {"serialNumber": None})


def test_unique_serial_number_and_well_known_name(demo: Any) -> None:
    with pytest.raises(Conflict, match="EM-0001"):
        demo.entities.create(METER, _meter("EM-0001"), associations=[("parent", BUILDING)])
    with pytest.raises(Conflict, match="meter-001"):
        demo.entities.create(
            METER,
            _meter("EM-30"),
            rt_well_known_name="meter-001",
            associations=[("parent", BUILDING)],
        )
    assert demo.entities.get_by_well_known_name("meter-001").rt_id == METER_1


def test_delete_required_target_needs_cascade(demo: Any) -> None:
    with pytest.raises(ValidationError, match="cascading"):
        demo.entities.delete(BUILDING)
    assert demo.entities.get(BUILDING)
    deleted = demo.entities.delete(BUILDING, cascade=True)
    assert set(deleted) == {BUILDING, METER_1, METER_2}
    with pytest.raises(NotFound):
        demo.entities.get(METER_1)
    archived = demo.entities.get(METER_1, include_archived=True)
    assert archived.archived
    assert demo.entities.count(METER) == 0
    assert demo.entities.find(METER, include_archived=True).to_dict()["items"]


def test_erase_removes_entity_and_links(demo: Any) -> None:
    demo.entities.delete(METER_2, erase=True)
    with pytest.raises(NotFound):
        demo.entities.get(METER_2, include_archived=True)
    assert demo.entities.navigate(METER_1, "supplies") == []


def test_find_filters_sort_and_paging(demo: Any) -> None:
    entities = demo.entities
    for i in range(25):
        entities.create(
            METER, _meter(f"EM-{100 + i}", voltage=220.0 + i), associations=[("parent", BUILDING)]
        )
    page = entities.find(METER, where=["voltage >= 240"], sort=["-voltage"], first=3)
    assert [e["voltage"] for e in page] == [244.0, 243.0, 242.0]
    assert page.has_next_page
    seen = []
    cursor = None
    while True:
        page = entities.find("Demo.Energy/Meter", sort=["serialNumber"], first=7, after=cursor)
        seen.extend(e["serialNumber"] for e in page)
        if not page.has_next_page:
            break
        cursor = page.end_cursor
    assert seen == sorted(seen)
    assert len(seen) == 27
    assert (
        entities.find(METER, where=["state EQUALS Faulty"]).to_dict()["items"][0]["rtId"] == METER_2
    )
    assert [e.rt_id for e in entities.find(METER, where=["phaseL1.voltage > 230"])] == [METER_1]
    by_parent = entities.find(METER, where=["parent->name EQUALS 'Hall A'"], first=None)
    assert len(by_parent) == 27
    counted = entities.find(METER, where=["voltage < 225"], include_total=True, first=1)
    assert counted.total_count == 5
    frame = entities.find(METER, where=["voltage < 225"]).to_pandas()
    assert list(frame["voltage"]) == [220.0, 221.0, 222.0, 223.0, 224.0] or len(frame) == 5


def test_polymorphic_find_over_abstract_base(demo: Any) -> None:
    types = {e.ck_type_id for e in demo.entities.find("Demo.Energy/NamedAsset", first=None)}
    assert types == {"Demo.Energy/Site", "Demo.Energy/Building", METER}
