"""Filters through RecordArray attributes, end to end through the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BUILDING
from workbench.errors import ValidationError

METER = "Demo.Energy/EnergyMeter"


@pytest.fixture
def meters(demo: Any) -> dict[str, str]:
    ids = {}
    for serial, phases in (
        ("P-1", [{"voltage": 228.0, "current": 3.0}, {"voltage": 241.0}]),
        ("P-2", [{"voltage": 230.0}]),
        ("P-3", []),
    ):
        entity = demo.entities.create(
            METER,
            {"name": serial, "serialNumber": serial, "state": "Active", "phases": phases},
            associations=[("parent", BUILDING)],
        )
        ids[entity.rt_id] = serial
    return ids


def _serials(demo: Any, meters: dict[str, str], *where: str) -> list[str]:
    page = demo.entities.find(METER, where=list(where), first=None)
    return sorted(meters[e.rt_id] for e in page if e.rt_id in meters)


def test_any_element_matches(demo: Any, meters: dict[str, str]) -> None:
    assert _serials(demo, meters, "phases.voltage > 240") == ["P-1"]
    assert _serials(demo, meters, "phases.voltage = 230") == ["P-2"]


def test_negation_means_no_element(demo: Any, meters: dict[str, str]) -> None:
    assert _serials(demo, meters, "phases.voltage != 230") == ["P-1", "P-3"]


def test_between_holds_for_one_element(demo: Any, meters: dict[str, str]) -> None:
    # P-1 has 228 and 241: no single element lies in [229, 240]
    assert _serials(demo, meters, "phases.voltage BETWEEN 229,240") == ["P-2"]


def test_null_tests_through_an_array_are_refused(demo: Any, meters: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="RecordArray"):
        demo.entities.find(METER, where=["phases.current IS_NULL"])
