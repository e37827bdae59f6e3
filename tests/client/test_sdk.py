"""The SDK contract: every test runs against the in-process and the remote client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import workbench
from tests.conftest import BUILDING, METER_1, METER_2, SITE
from workbench.ck.loader import load_library_from_text
from workbench.runtime.entity import EntityInput

EXTRA = """
modelId: Demo.Extra-1.0.0
dependencies:
  - System-[2.0,3.0)
attributes:
  - {id: Capacity, valueType: Double}
types:
  - typeId: Tank
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Demo.Extra/Capacity, name: Capacity}
"""

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_ck_libraries_model_and_export(sdk: Any) -> None:
    assert "Demo.Energy" in sdk.ck.libraries()
    assert set(sdk.ck.own_libraries()) == {"Demo.Energy"}
    model = sdk.ck.model()
    assert "Demo.Energy/EnergyMeter" in model.types
    assert sdk.model.type("Demo.Energy/Meter").is_abstract
    exported = sdk.ck.export_library("Demo.Energy")
    assert exported["modelId"] == "Demo.Energy-1.0.0"
    with pytest.raises(workbench.NotFound):
        sdk.ck.export_library("Nope")


def test_ck_import_from_text_file_and_library(sdk: Any, tmp_path: Path) -> None:
    stamp = sdk.ck.stamp()
    library = load_library_from_text(EXTRA)
    checked = sdk.ck.validate(library)
    assert "Demo.Extra/Tank" in checked.types
    assert sdk.ck.stamp() == stamp
    report = sdk.ck.import_library(library)
    assert report.model_id == "Demo.Extra-1.0.0"
    assert report.added_types == ["Demo.Extra/Tank"]
    assert sdk.ck.stamp() != stamp
    assert "Demo.Extra/Tank" in sdk.ck.model().types
    file = tmp_path / "extra.yaml"
    file.write_text(EXTRA, encoding="utf-8")
    assert sdk.ck.import_library(file).unchanged
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXTRA.replace("1.0.0", "1.0.1").replace("System/Entity", "X/Y"), "utf-8")
    with pytest.raises(workbench.ModelError):
        sdk.ck.import_library(broken)


def test_ck_import_of_a_library_folder(sdk: Any, tmp_path: Path) -> None:
    from tests.conftest import DEMO_LIBRARY

    assert sdk.ck.import_library(DEMO_LIBRARY).unchanged


def test_get_find_count_and_navigate(sdk: Any) -> None:
    meter = sdk.entities.get(METER_1)
    assert meter.attributes["serialNumber"] == "EM-0001"
    assert meter.rt_creation_datetime.tzinfo is not None
    assert set(sdk.entities.get_many([METER_1, SITE])) == {METER_1, SITE}
    assert sdk.entities.get_by_well_known_name("meter-002").rt_id == METER_2
    page = sdk.entities.find("Demo.Energy/Meter", where=["state EQUALS Active"], include_total=True)
    assert [e.rt_id for e in page] == [METER_1]
    assert page.total_count == 1
    tuples = sdk.entities.find("Demo.Energy/Meter", where=[("serialNumber", "EQUALS", "EM-0002")])
    assert [e.rt_id for e in tuples] == [METER_2]
    dicts = sdk.entities.find(
        "Demo.Energy/Meter",
        where=[
            {"attributePath": "state", "operator": "IN", "comparisonValue": ["Active", "Faulty"]}
        ],
        sort=["-serialNumber"],
    )
    assert [e.rt_id for e in dicts] == [METER_2, METER_1]
    first = sdk.entities.find("Demo.Energy/Meter", sort=[("serialNumber", False)], first=1)
    assert first.has_next_page
    second = sdk.entities.find(
        "Demo.Energy/Meter", sort=[("serialNumber", False)], first=1, after=first.end_cursor
    )
    assert [e.rt_id for e in second] == [METER_2]
    assert sdk.entities.count("Demo.Energy/Meter") == 2
    assert [e.rt_id for e in sdk.entities.navigate(METER_1, "parent")] == [BUILDING]
    assert sdk.entities.find("Demo.Energy/EnergyMeter").to_pandas().loc[METER_1, "name"] == (
        "Meter-001"
    )
    links = sdk.entities.links([METER_2])
    assert {(link.role_id, link.target_rt_id) for link in links} >= {
        ("System/ParentChild", BUILDING)
    }
    with pytest.raises(workbench.NotFound):
        sdk.entities.get("6560a1b2c3d4e5f6071829ff")
    with pytest.raises(workbench.ValidationError):
        sdk.entities.find("Demo.Energy/Meter", where=["nope EQUALS 1"])


def test_create_update_conflict_link_and_delete(sdk: Any) -> None:
    created = sdk.entities.create(
        "Demo.Energy/EnergyMeter",
        {"name": "Meter-003", "serialNumber": "EM-0003", "state": "Active", "voltage": 229.5},
        associations=[("parent", BUILDING)],
    )
    assert created.rt_version == 1
    updated = sdk.entities.update(created.rt_id, {"voltage": 231.0}, rt_version=1)
    assert updated.rt_version == 2
    assert updated.attributes["voltage"] == 231.0
    with pytest.raises(workbench.Conflict):
        sdk.entities.update(created.rt_id, {"voltage": 1.0}, rt_version=1)
    linked = sdk.entities.link(created.rt_id, "Demo.Energy/Supplies", METER_1)
    assert linked.rt_version == 3
    sdk.entities.unlink(created.rt_id, "Demo.Energy/Supplies", METER_1)
    with pytest.raises(workbench.ValidationError):
        sdk.entities.create_many(
            [
                EntityInput(
                    "Demo.Energy/EnergyMeter",
                    {"name": "ok", "serialNumber": "EM-0004", "state": "Active"},
                ),
                EntityInput("Demo.Energy/EnergyMeter", {"name": "bad", "voltage": "abc"}),
            ]
        )
    assert sdk.entities.count("Demo.Energy/EnergyMeter") == 3  # the batch wrote nothing
    assert sdk.entities.delete(created.rt_id) == [created.rt_id]
    assert sdk.entities.get(created.rt_id, include_archived=True).archived
    with pytest.raises(workbench.NotFound):
        sdk.entities.get(created.rt_id)


def test_streams_write_read_aggregate_downsample(sdk: Any) -> None:
    streams = sdk.streams("Demo.Energy/EnergyMeter")
    frame = pd.DataFrame(
        {
            "rtId": [METER_1] * 60,
            "timestamp": [START + timedelta(seconds=i) for i in range(60)],
            "voltage": [230.0 + i % 10 for i in range(60)],
        }
    )
    assert streams.write(frame) == 60
    assert streams.write([{"rtId": METER_2, "timestamp": START, "voltage": 1.0}]) == 1
    everything = streams.read(START, START + timedelta(minutes=5))
    assert len(everything) == 61
    page = streams.read(START, START + timedelta(minutes=5), rt_ids=[METER_1], first=25)
    assert len(page) == 25
    assert page.has_next_page
    rest = streams.read(
        START, START + timedelta(minutes=5), rt_ids=[METER_1], first=100, after=page.end_cursor
    )
    assert len(rest) == 35
    assert not rest.has_next_page
    assert rest.to_pandas()["voltage"].iloc[0] == 235.0
    aggregate = streams.aggregate(
        START, START + timedelta(minutes=1), "30s", ["avg", "max"], rt_ids=[METER_1]
    )
    assert aggregate.to_pandas()["voltageMax"].tolist() == [239.0, 239.0]
    downsampled = streams.downsample(START, START + timedelta(minutes=1), 6, rt_ids=[METER_1])
    assert len(downsampled) <= 6
    assert downsampled.interval == "10s"
    assert "voltage" in streams.columns()
    assert streams.delete(rt_ids=[METER_2]) == 1
    with pytest.raises(workbench.ValidationError):
        streams.write([{"rtId": "6560a1b2c3d4e5f6071829ff", "timestamp": START, "voltage": 1.0}])


def test_graphql_returns_frames_for_lists_and_dicts_otherwise(sdk: Any) -> None:
    frame = sdk.graphql(
        "query ($first: Int) { runtime { rtDemoEnergyEnergyMeter(first: $first) "
        "{ items { rtId name phaseL1 { voltage } } } } }",
        {"first": 10},
    )
    assert isinstance(frame, pd.DataFrame)
    assert set(frame["rtId"]) == {METER_1, METER_2}
    assert "phaseL1.voltage" in frame.columns
    models = sdk.graphql("{ constructionKit { models { modelId } } }")
    assert isinstance(models, pd.DataFrame)
    both = sdk.graphql(
        "{ constructionKit { models { modelId } } runtime { rtDemoEnergySite { items { name } } } }"
    )
    assert isinstance(both, dict)
    with pytest.raises(workbench.ValidationError):
        sdk.graphql("{ runtime { nope } }")
