"""The fast paths of the bulk write path give exactly what the general paths give.

``normalize_attributes`` first tries a compiled per-type plan and falls back to the exact
normaliser on anything irregular; these tests feed both the same input (the exact path is
forced with a non-dict mapping) and compare storage forms (by ``repr``, so ``1``/``1.0``/``True``
and key order count) and error messages. The service tests pin the error order of association
checks and that the garbage-collector pause around bulk batches leaves the collector as found.
"""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from tests.conftest import BUILDING
from workbench.ck.model import CkModel
from workbench.errors import ValidationError
from workbench.runtime.entity import AssociationInput, EntityInput
from workbench.runtime.values import fast_normalize, normalize_attributes

THING = "Test.Values/Thing"
METER = "Demo.Energy/EnergyMeter"
UTC_NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

#: one value per line: plain valid ones (taken by the fast path) and every kind of irregular one
CASES: list[dict[Any, Any]] = [
    {},
    {"text": "hello", "flag": True, "count": 5, "big": 2**40, "ratio": 0.5},
    {"Text": "x", "FLAG": False, "ratio": 3, "count": 2**31, "big": 2**63},
    {"text": 5},
    {"text": None},
    {"flag": 1},
    {"flag": "true"},
    {"count": True},
    {"count": 3.0},
    {"count": 3.5},
    {"count": "3"},
    {"count": -(2**31)},
    {"count": 2**31 - 1},
    {"ratio": float("nan")},
    {"ratio": float("inf")},
    {"ratio": 10**400},
    {"ratio": True},
    {"at": UTC_NOON},
    {"at": datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))},
    {"at": datetime(2024, 5, 1)},
    {"at": date(2024, 5, 1)},
    {"at": "2024-05-01T12:00:00Z"},
    {"atOffset": UTC_NOON},
    {"duration": "PT15M"},
    {"duration": timedelta(seconds=3)},
    {"level": "Low"},
    {"level": "low"},
    {"level": " High "},
    {"level": "HIGH"},
    {"level": 1},
    {"level": "1"},
    {"level": 7},
    {"level": True},
    {"level": "Nope"},
    {"access": "Read|Write"},
    {"access": ["Read"]},
    {"access": 3},
    {"access": 9},
    {"labels": ["a", "b"]},
    {"labels": ("a",)},
    {"labels": ["a", 1]},
    {"labels": "a"},
    {"labels": []},
    {"codes": [1, 2]},
    {"codes": [1, True]},
    {"codes": [2**31]},
    {"codes": [1.0]},
    {"limits": {"low": 1.5}},
    {"limits": {"low": 1.5, "high": "x"}},
    {"limits": {"high": 2.0}},
    {"limits": {"ckRecordId": "Test.Values/UnitLimits", "low": 1.0, "unit": "V"}},
    {"history": [{"low": 1.0}, {"low": 2.0, "high": 3.0}]},
    {"history": [{"low": "x"}]},
    {"location": {"type": "Point", "coordinates": [16.3, 48.2]}},
    {"blob": b"\x00\x01"},
    {"blobRef": "ref-1"},
    {"blobRef": ""},
    {"mode": "High"},
    {"channels": ["x"]},
    {"bogus": 1},
    {"text": "a", "Text": "b"},
    {"name": None},
    {1: "x"},
]


def _exact(model: CkModel, type_id: str, values: Any, **options: Any) -> Any:
    """normalize_attributes through the exact normaliser only (the fast path takes dicts)."""
    if isinstance(values, dict):
        values = MappingProxyType(values)
    return normalize_attributes(model, type_id, values, **options)


def _outcome(call: Any) -> str:
    try:
        return "ok " + repr(call())
    except ValidationError as exc:
        return "error " + repr([(d.message, d.location, d.element) for d in exc.details])


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("partial", [False, True])
def test_fast_path_matches_the_exact_path(
    values_model: CkModel, case: dict[Any, Any], partial: bool
) -> None:
    values = case if partial else {"name": "t", **case}
    options: dict[str, Any] = {"partial": partial, "location": "entities[3]"}
    fast = _outcome(lambda: normalize_attributes(values_model, THING, values, **options))
    exact = _outcome(lambda: _exact(values_model, THING, values, **options))
    assert fast == exact
    direct = fast_normalize(values_model, values_model.types[THING], values, "name", partial)
    if direct is not None:
        assert "ok " + repr(direct) == exact


def test_fast_path_by_attribute_id_and_sibling_types(values_model: CkModel) -> None:
    by_id = {
        "System/Name": "t",
        "Test.Values/Count": 3,
        "Test.Values/Labels": ["x"],
        "Test.Values/Level": "Medium",
    }
    for values in (by_id, {**by_id, "name": "dup"}, {**by_id, "Test.Values/Count": "3"}):
        fast = _outcome(
            lambda v=values: normalize_attributes(values_model, THING, v, keyed_by="id")
        )
        exact = _outcome(lambda v=values: _exact(values_model, THING, v, keyed_by="id"))
        assert fast == exact
    # the same attribute name means different things on sibling types
    for type_id, size in (("Test.Values/Box", 3), ("Test.Values/Ball", "3")):
        for value in (3, "3"):
            values = {"name": "s", "size": value}
            fast = _outcome(lambda t=type_id, v=values: normalize_attributes(values_model, t, v))
            exact = _outcome(lambda t=type_id, v=values: _exact(values_model, t, v))
            assert fast == exact
        assert normalize_attributes(values_model, type_id, {"name": "s", "size": size})["Size"] == (
            size
        )


def test_fast_path_returns_fresh_containers(values_model: CkModel) -> None:
    labels = ["a", "b"]
    out = normalize_attributes(values_model, THING, {"name": "t", "labels": labels})
    assert out["Labels"] == labels
    assert out["Labels"] is not labels
    first = normalize_attributes(values_model, THING, {"name": "t"})
    second = normalize_attributes(values_model, THING, {"name": "t"})
    assert first["Channels"] == ["a", "b"]
    assert first["Channels"] is not second["Channels"]


def test_demo_sample_entities_match(
    demo_model: CkModel, demo_entities: list[dict[str, Any]]
) -> None:
    for entity in demo_entities:
        values = {a["id"]: a.get("value") for a in entity.get("attributes") or []}
        type_id = entity["ckTypeId"]
        fast = _outcome(
            lambda t=type_id, v=values: normalize_attributes(demo_model, t, v, keyed_by="id")
        )
        exact = _outcome(lambda t=type_id, v=values: _exact(demo_model, t, v, keyed_by="id"))
        assert fast == exact


# --- the service --------------------------------------------------------------------------------


def _meter(serial: str) -> dict[str, Any]:
    return {"name": f"Meter {serial}", "serialNumber": serial, "state": "Active"}


def test_multiplicity_errors_come_in_rt_id_order(demo: Any) -> None:
    ids = ["ff" * 12, "0a" * 12, "7c" * 12]
    inputs = [EntityInput(METER, _meter(f"EM-{i}"), rt_id=rt_id) for i, rt_id in enumerate(ids)]
    with pytest.raises(ValidationError) as caught:
        demo.entities.apply(creates=inputs, return_entities=False)
    assert [(d.location, d.message) for d in caught.value.details] == [
        (
            rt_id,
            f"{METER} needs exactly one 'Parent' (System/ParentChild), has 0; "
            "link it to a Demo.Energy/Building",
        )
        for rt_id in sorted(ids)
    ]


def test_bulk_batch_links_targets_in_store_and_in_batch(demo: Any) -> None:
    building = demo.entities.get(BUILDING)
    parent = AssociationInput("parent", BUILDING)
    inputs = [
        EntityInput(METER, _meter(f"EM-B{i}"), associations=[parent, parent]) for i in range(1200)
    ]
    demo.entities.apply(creates=inputs, return_entities=False)
    assert demo.entities.count(METER) == 1202
    children = demo.entities.navigate(building.rt_id, "children")
    assert len(children) == 1202
    # the types of stored targets come from the store's light lookup, archived ones hidden
    types = demo.entities.entity_types([BUILDING, "ab" * 12])
    assert types == {BUILDING: building.ck_type_id}


@pytest.mark.parametrize("size", [1, 1200])
def test_gc_state_is_restored_after_a_batch(demo: Any, size: int) -> None:
    parent = AssociationInput("parent", BUILDING)
    good = [EntityInput(METER, _meter(f"EM-G{i}"), associations=[parent]) for i in range(size)]
    assert gc.isenabled()
    demo.entities.apply(creates=good, return_entities=False)
    assert gc.isenabled()
    bad = [EntityInput(METER, _meter(f"EM-H{i}")) for i in range(size)]
    with pytest.raises(ValidationError):
        demo.entities.apply(creates=bad, return_entities=False)
    assert gc.isenabled()
    gc.disable()
    try:
        more = [EntityInput(METER, _meter(f"EM-J{i}"), associations=[parent]) for i in range(size)]
        demo.entities.apply(creates=more, return_entities=False)
        assert not gc.isenabled()  # the application's choice stands
    finally:
        gc.enable()
