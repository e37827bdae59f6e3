from __future__ import annotations

import copy

import pytest

from tests.ck.conftest import FIXTURES, BuildLibrary
from workbench.ck import (
    CkLibrary,
    Dependency,
    Version,
    dump_library,
    load_library_from_documents,
    resolve_model,
    select_versions,
    system_library,
)
from workbench.errors import ModelError


def with_version(
    library: CkLibrary, version: str, dependencies: list[str] | None = None
) -> CkLibrary:
    """A copy of ``library`` under another version (and optionally other dependencies)."""
    compiled = copy.deepcopy(dump_library(library))
    compiled["modelId"] = f"{library.name}-{version}"
    if dependencies is not None:
        compiled["dependencies"] = dependencies
    return load_library_from_documents([("compiled.yaml", compiled)])


# -- resolve_model -----------------------------------------------------------------------------


def test_demo_energy_resolves(demo_energy: CkLibrary) -> None:
    model = resolve_model([demo_energy])
    assert list(model.libraries) == ["System", "Demo.Energy", "System.Bot", "System.Communication"]
    meter = model.type("Demo.Energy/EnergyMeter")
    assert list(meter.attributes)[:6] == [
        "Name",
        "Description",
        "SerialNumber",
        "State",
        "InstalledAt",
        "Tags",
    ]
    assert {"Voltage", "PhaseL1", "Phases"} <= set(meter.attributes)
    assert meter.attribute("state").attribute.enum_id == "Demo.Energy/MeterState"
    assert meter.attribute("Name").attribute.value_type == "String"  # linked to System/Name
    assert meter.attribute("Name").declared_on == "Demo.Energy/NamedAsset"
    assert meter.base_chain == ["Demo.Energy/Meter", "Demo.Energy/NamedAsset", "System/Entity"]
    assert [a.role_id for a in meter.associations] == [
        "System/Related",
        "System/ParentChild",
        "Demo.Energy/Supplies",
    ]
    assert [i.fields for i in meter.indexes] == [[["SerialNumber"]]]
    assert model.type("Demo.Energy/Meter").subtypes == [
        "Demo.Energy/EnergyMeter",
        "Demo.Energy/GasMeter",
    ]
    assert model.type("Demo.Energy/GasMeter").is_final
    assert model.type("Demo.Energy/GasMeter").attribute("VolumeM3").attribute_id == (
        "Demo.Energy/EnergyImported"
    )
    assert model.is_a("Demo.Energy/GasMeter", "System/Entity")
    assert set(model.descendants("Demo.Energy/NamedAsset")) == {
        "Demo.Energy/Meter",
        "Demo.Energy/Site",
        "Demo.Energy/Building",
        "Demo.Energy/EnergyMeter",
        "Demo.Energy/GasMeter",
    }
    assert model.record("Demo.Energy/PhaseInfo").attributes["Current"].is_optional


def test_demo_energy_associations(demo_energy: CkLibrary) -> None:
    model = resolve_model([demo_energy])
    parent = model.end("Demo.Energy/EnergyMeter", "Parent")
    assert (parent.direction, parent.target_type_id, parent.multiplicity) == (
        "outbound",
        "Demo.Energy/Building",
        "One",
    )
    children = [e for e in model.inbound_ends("Demo.Energy/Building") if e.name == "Children"]
    assert [e.source_type_id for e in children] == ["Demo.Energy/Meter"]
    assert model.end("Demo.Energy/Site", "children").source_type_id == "Demo.Energy/Building"
    assert model.end("Demo.Energy/GasMeter", "SuppliedBy").other_type_id == "Demo.Energy/Meter"
    assert model.end("Demo.Energy/EnergyMeter", "Supplies").direction == "inbound"


def test_resolving_does_not_touch_the_libraries(demo_energy: CkLibrary) -> None:
    before = copy.deepcopy(demo_energy)
    resolve_model([demo_energy])
    assert demo_energy == before
    assert demo_energy.types["Demo.Energy/Meter"].attributes == {}


def test_libraries_across_dependencies(basic: CkLibrary, plant: CkLibrary) -> None:
    model = resolve_model([plant, basic, system_library()])
    pump = model.type("Plant/Pump")
    assert list(pump.attributes) == ["Name", "SerialNumber", "Status", "Address", "FlowRate"]
    assert pump.attribute("Status").attribute.enum_id == "Basic/AssetStatus"
    assert model.end("Plant/Pump", "Parent").target_type_id == "Basic/TreeNode"
    assert [i.fields for i in pump.indexes] == [[["SerialNumber"]], [["Address.City"]]]


def test_two_versions_of_one_library_are_refused(basic: CkLibrary) -> None:
    with pytest.raises(ModelError, match=r"two versions of Basic \(2\.1\.0 and 2\.0\.0\)"):
        resolve_model([basic, with_version(basic, "2.0.0")])


def test_missing_dependency_in_model(plant: CkLibrary) -> None:
    with pytest.raises(ModelError) as error:
        resolve_model([plant])
    assert str(error.value.details[0]) == (
        f"{FIXTURES / 'Plant.compiled.yaml'}: Plant-1.0.0: Plant-1.0.0 depends on Basic-[2.0,3.0) "
        "but no library Basic is available; import it first"
    )


def test_dependency_out_of_range_in_model(plant: CkLibrary, basic: CkLibrary) -> None:
    with pytest.raises(ModelError) as error:
        resolve_model([plant, with_version(basic, "3.0.0")])
    assert "Plant-1.0.0 depends on Basic-[2.0,3.0) but the model holds Basic-3.0.0" in str(
        error.value
    )


# -- select_versions ---------------------------------------------------------------------------


@pytest.fixture
def basics(basic: CkLibrary) -> list[CkLibrary]:
    return [with_version(basic, v) for v in ("1.0.0", "2.0.0", "2.5.0", "3.0.0")]


def test_select_highest_version_in_range(plant: CkLibrary, basics: list[CkLibrary]) -> None:
    chosen = select_versions([plant], {"Basic": basics})
    assert [lib.model_id for lib in chosen] == ["System-2.0.0", "Basic-2.5.0", "Plant-1.0.0"]
    model = resolve_model(chosen)
    assert "Plant/Pump" in model.types


def test_select_from_dependencies(plant: CkLibrary, basics: list[CkLibrary]) -> None:
    chosen = select_versions(
        [Dependency.parse("Plant-1.0"), Dependency.parse("Basic-[2.0,2.5)")],
        {"Basic": basics, "Plant": [plant]},
    )
    assert [lib.model_id for lib in chosen] == ["System-2.0.0", "Basic-2.0.0", "Plant-1.0.0"]


def test_select_is_transitive(plant: CkLibrary, basics: list[CkLibrary]) -> None:
    plants = [plant, with_version(plant, "2.0.0", ["System-[2.0,3.0)", "Basic-[3.0,4.0)"])]
    chosen = select_versions(
        [Dependency.parse("Plant-[1.0,3.0)")], {"Plant": plants, "Basic": basics}
    )
    assert [lib.model_id for lib in chosen] == ["System-2.0.0", "Basic-3.0.0", "Plant-2.0.0"]


def test_select_missing_library(demo_energy: CkLibrary) -> None:
    demo = with_version(demo_energy, "1.0.0", ["System-[2.0,3.0)", "Basic-[2.0,3.0)"])
    with pytest.raises(ModelError) as error:
        select_versions([demo], {})
    assert error.value.details[0].message == (
        "Demo.Energy-1.0.0 depends on Basic-[2.0,3.0) but no library Basic is available; "
        "import it first"
    )


def test_select_unsatisfiable_range(plant: CkLibrary, basic: CkLibrary) -> None:
    offered = [with_version(basic, "1.0.0"), with_version(basic, "3.1.0")]
    with pytest.raises(ModelError) as error:
        select_versions([plant], {"Basic": offered})
    assert error.value.details[0].message == (
        "Plant-1.0.0 depends on Basic-[2.0,3.0) but only Basic 1.0.0, 3.1.0 are available; "
        "import a version of Basic inside [2.0,3.0)"
    )


def test_select_disjoint_ranges(
    plant: CkLibrary, basics: list[CkLibrary], build: BuildLibrary
) -> None:
    other = build("Other-1.0.0", ("Basic-[1.0,2.0)",))
    with pytest.raises(ModelError) as error:
        select_versions([plant, other], {"Basic": basics})
    message = error.value.details[0].message
    assert "Plant-1.0.0 requires Basic-[2.0,3.0) but Other-1.0.0 requires Basic-[1.0,2.0)" in (
        message
    )
    assert "no available version of Basic (1.0.0, 2.0.0, 2.5.0, 3.0.0) satisfies both" in message


def test_select_dependency_cycle(build: BuildLibrary) -> None:
    first = build("A-1.0.0", ("B-1.0",))
    second = build("B-1.0.0", ("A-1.0",))
    with pytest.raises(ModelError, match=r"dependency cycle: A-1\.0\.0 -> B-1\.0\.0 -> A-1\.0\.0"):
        select_versions([first], {"B": [second]})
    with pytest.raises(ModelError, match="dependency cycle"):
        resolve_model([first, second])


def test_select_uses_the_built_in_system(demo_energy: CkLibrary) -> None:
    chosen = select_versions([demo_energy], {})
    assert chosen[0].model_id == "System-2.0.0"
    assert chosen[0].version == Version(2)
