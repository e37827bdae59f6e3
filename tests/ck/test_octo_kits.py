"""Libraries shaped like the published OctoMesh construction kits (our own small copies in
``tests/fixtures/ck-octo-*``): the liberal reading, the dependency closure, the Industry.Basic
2.0.0 -> 2.1.0 migration on data, versioned ids in runtime files, export of unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench
from tests.ck.conftest import BuildLibrary
from workbench.ck import (
    IndexType,
    Version,
    dump_library,
    load_library,
    resolve_model,
    select_versions,
)
from workbench.ck.model import Dependency
from workbench.errors import ModelError
from workbench.runtime.files import import_runtime_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BASIC = FIXTURES / "ck-octo-basic"
INDUSTRY_BASIC_2_0 = FIXTURES / "ck-octo-industry-basic-2.0.0"
INDUSTRY_BASIC_2_1 = FIXTURES / "ck-octo-industry-basic-2.1.0"
INDUSTRY_ENERGY = FIXTURES / "ck-octo-industry-energy"
ENERGY_DEMO = FIXTURES / "ck-octo-energy-demo"
ENERGY_COMMUNITY = FIXTURES / "ck-octo-energy-community"
RUNTIME = FIXTURES / "ck-octo-runtime" / "energy.yaml"
ONE_ELEMENT_FILES = FIXTURES / "ck-octo-one-element-files"
#: dependency order, as they are imported with ``workbench ck import``
KITS = (BASIC, INDUSTRY_BASIC_2_0, INDUSTRY_ENERGY, ENERGY_DEMO, ENERGY_COMMUNITY)
METER = "65b000000000000000000001"
ALARM = "65b000000000000000000003"


@pytest.fixture
def tenant(wb: workbench.Workbench) -> workbench.Tenant:
    plant = wb.tenants.create("plant")
    for kit in KITS:
        plant.ck.import_library(load_library(kit))
    return plant


def messages(library_path: Path) -> list[str]:
    return [w.message for w in load_library(library_path).warnings]


def test_metadata_descriptions_and_unknown_keys() -> None:
    basic = load_library(BASIC)
    serial = basic.attributes["Basic/SerialNumber"]
    assert serial.metadata == {"semanticId": "0000-1#02-TEST01#001"}
    assert basic.attributes["Basic/Temperature"].metadata == {"Unit": "°C", "Decimals": "2"}
    assert [(w.element, w.message.split(" is kept")[0]) for w in basic.warnings] == [
        ("Basic/Time", "unknown key 'isDataStream' in attribute"),
        ("Basic/NamedEntity", "unknown key 'isCollectionRoot' in type"),
    ]
    with pytest.raises(ModelError) as error:
        load_library(BASIC, strict=True)
    assert len(error.value.details) == 2


def test_text_index_language_and_field_weights() -> None:
    (text,) = load_library(BASIC).types["Basic/NamedEntity"].own_indexes
    assert (text.index_type, text.language) == (IndexType.TEXT, "en")
    assert text.fields == [["Name"], ["Description"]]
    assert text.weights == [10.0, 2.0]


def test_unknown_keys_are_exported_again(tenant: workbench.Tenant) -> None:
    exported = tenant.ck.export_library("Basic")
    named = next(t for t in exported["types"] if t["typeId"] == "NamedEntity")
    assert named["isCollectionRoot"] is True
    assert named["indexes"][0]["language"] == "en"
    assert named["indexes"][0]["fields"][0]["weight"] == 10
    time = next(a for a in exported["attributes"] if a["id"] == "Time")
    assert time["isDataStream"] is True
    serial = next(a for a in exported["attributes"] if a["id"] == "SerialNumber")
    assert serial["metaData"][0]["description"] == "serial number given by the manufacturer"


def test_references_reach_the_dependency_closure() -> None:
    energy = load_library(INDUSTRY_ENERGY)
    assert [d.name for d in energy.dependencies] == ["Industry.Basic"]
    assert set(energy.referenced_libraries) == {"Basic", "Industry.Basic"}
    libraries = [load_library(p) for p in (BASIC, INDUSTRY_BASIC_2_0)] + [energy]
    available = {lib.name: [lib] for lib in libraries}
    model = resolve_model(select_versions([Dependency.parse("Industry.Energy-2.0")], available))
    meter = model.type("Industry.Energy/EnergyMeter")
    assert meter.base_chain[:2] == ["Basic/Asset", "Basic/NamedEntity"]
    assert {"Name", "SerialNumber", "State", "ActivePower", "PhaseL1"} <= set(meter.attributes)


def test_a_library_outside_the_closure_is_an_error(build: BuildLibrary) -> None:
    basic = load_library(BASIC)
    stray = build(
        "Stray-1.0.0", types__t="types: [{typeId: T, derivedFromCkTypeId: '${Basic}/Asset'}]"
    )
    with pytest.raises(ModelError) as error:
        resolve_model([basic, stray])
    (detail,) = (str(d) for d in error.value.details)
    assert detail == (
        "types/t.yaml: Stray/T: derivedFromCkTypeId '${Basic}/Asset': refers to library Basic, "
        "but Stray does not depend on it, directly or through its dependencies; add a dependency "
        "such as Basic-[1.0,2.0) to its ckModel.yaml"
    )


def test_a_library_role_keeps_names_the_system_role_also_uses(tenant: workbench.Tenant) -> None:
    ends = {
        (e.direction, e.name): e.role.id
        for e in (
            *tenant.model.outbound_ends("Basic/Asset"),
            *tenant.model.inbound_ends("Basic/Asset"),
        )
    }
    assert ends[("outbound", "RelatesTo")] == "Basic/RelatedClassification"
    assert ends[("inbound", "RelatesFrom")] == "Basic/RelatedClassification"
    assert ends[("outbound", "SystemRelatesTo")] == "System/Related"
    assert ends[("inbound", "SystemRelatesFrom")] == "System/Related"
    assert tenant.model.end("Basic/Asset", "relatesTo").role.id == "Basic/RelatedClassification"
    assert tenant.model.end("Basic/NamedEntity", "relatesTo").role.id == "System/Related"


def test_model_id_without_version_and_bare_dependency() -> None:
    demo = load_library(ENERGY_DEMO)
    assert demo.version == Version(0)
    assert str(demo.dependencies[0]) == "Industry.Energy-*"
    assert [m.split(";")[0] for m in messages(ENERGY_DEMO)] == [
        "modelId 'Octo.Energy.Demo' has no version",
        "dependency 'Industry.Energy' has no version range and accepts any version of "
        "Industry.Energy",
    ]


def test_all_kits_import_in_dependency_order(tenant: workbench.Tenant) -> None:
    owned = {name: lib.model_id for name, lib in tenant.ck.own_libraries().items()}
    assert owned == {
        "Basic": "Basic-2.0.0",
        "Industry.Basic": "Industry.Basic-2.0.0",
        "Industry.Energy": "Industry.Energy-2.0.0",
        "Octo.Energy.Demo": "Octo.Energy.Demo-0.0.0",
        "EnergyCommunity": "EnergyCommunity-2.0.0",
    }
    assert tenant.model.is_a("Octo.Energy.Demo/House", "Basic/Asset")


def test_runtime_file_with_versioned_ids(tenant: workbench.Tenant) -> None:
    assert import_runtime_file(tenant.entities, tenant.model, RUNTIME) == {
        "created": 3,
        "updated": 0,
    }
    meter = tenant.entities.get(METER)
    assert meter.ck_type_id == "Industry.Energy/EnergyMeter"
    assert meter.attributes["name"] == "Meter North"
    assert meter.attributes["state"] == "On"
    assert meter.attributes["phaseL1"] == {"voltage": 230.4}
    alarm = tenant.entities.get(ALARM)
    assert alarm.attributes["eventAlarmPriority"] == "High"
    assert [(a.role_id, a.target_rt_id) for a in tenant.entities.links([ALARM])] == [
        ("Industry.Basic/EventSource", METER)
    ]


def test_industry_basic_2_0_to_2_1_migration_renames_on_data(tenant: workbench.Tenant) -> None:
    import_runtime_file(tenant.entities, tenant.model, RUNTIME)
    event = tenant.entities.create(
        "Industry.Basic/Event", {"name": "Door opened", "time": "2026-01-02T10:00:00Z"}
    )
    upgrade = load_library(INDUSTRY_BASIC_2_1)
    assert [w.message.split(" is kept")[0] for w in upgrade.warnings] == [
        "unknown key 'postValidations' in a script"
    ]
    report = tenant.ck.import_library(upgrade)
    assert (report.previous_model_id, report.model_id) == (
        "Industry.Basic-2.0.0",
        "Industry.Basic-2.1.0",
    )
    assert report.migrated_entities == 2  # the event and the alarm (a subtype of Event)
    alarm = tenant.entities.get(ALARM)
    assert alarm.attributes == {
        "name": "Overload",
        "received": "2026-01-01T08:00:00Z",
        "priority": "High",
    }
    assert tenant.entities.get(event.rt_id).attributes == {
        "name": "Door opened",
        "received": "2026-01-02T10:00:00Z",
    }
    assert tenant.entities.get(METER).attributes["name"] == "Meter North"  # untouched
    (migration,) = load_library(INDUSTRY_BASIC_2_1).migrations
    assert [s.params["stepId"] for s in migration.steps] == ["time-becomes-received", "priority"]
    stored = dump_library(tenant.ck.own_libraries()["Industry.Basic"])
    assert stored["migrations"][0]["postValidations"][0]["validationId"] == "no-time-left"


def test_one_element_files_are_read_into_ordinary_elements(tenant: workbench.Tenant) -> None:
    library = load_library(ONE_ELEMENT_FILES)
    assert library.model_id == "OneFileDemo-0.0.0"
    assert sorted(library.types) == ["OneFileDemo/Device", "OneFileDemo/Site"]
    device = library.types["OneFileDemo/Device"]
    assert device.derived_from == "Basic/NamedEntity"
    assert [(a.attribute_id, a.name, a.is_optional) for a in device.own_attributes] == [
        ("OneFileDemo/DeviceCode", "DeviceCode", False),
        ("OneFileDemo/Level", "Level", True),
    ]
    assert library.attributes["OneFileDemo/DeviceCode"].description == "Code printed on the device"
    assert library.attributes["OneFileDemo/OpenedOn"].value_type.value == "DateTime"  # on a type
    assert library.attributes["OneFileDemo/Level"].enum_id == "OneFileDemo/Level"
    level = library.enums["OneFileDemo/Level"]
    assert [(v.key, v.name) for v in level.values] == [(1, "Low"), (2, "High")]
    role = library.roles["OneFileDemo/SiteDevices"]
    multiplicities = (str(role.outbound_multiplicity), str(role.inbound_multiplicity))
    assert (role.outbound_name, *multiplicities) == ("SiteDevices", "ZeroOrOne", "N")
    assert [(a.role_id, a.target_type_id) for a in device.own_associations] == [
        ("OneFileDemo/SiteDevices", "OneFileDemo/Site")
    ]
    assert library.types["OneFileDemo/Site"].own_associations == []  # the inbound view
    read_as = [w for w in library.warnings if "read as a one-element file" in w.message]
    assert len(read_as) == 5
    exported = dump_library(library)  # strict in what we produce: ordinary element lists
    assert {e["typeId"] for e in exported["types"]} == {"Device", "Site"}
    report = tenant.ck.import_library(library)
    assert report.added_types == ["OneFileDemo/Device", "OneFileDemo/Site"]
    site = tenant.entities.create("OneFileDemo/Site", {"name": "North"})
    device_entity = tenant.entities.create(
        "OneFileDemo/Device",
        {"name": "Pump", "deviceCode": "P-1"},
        associations=[("siteDevices", site.rt_id)],
    )
    assert device_entity.attributes["level"] == "Low"  # the default, key 1


def test_an_absent_platform_library_is_accepted_and_what_refers_to_it_left_out(
    tenant: workbench.Tenant,
) -> None:
    settings = tenant.model.type("EnergyCommunity/Configuration")
    assert settings.base_chain == ["System/Configuration", "System/Entity"]
    assert list(settings.attributes) == ["CommunityName", "CommunityCode", "HeaderLogo"]
    assert [a.role_id for a in settings.associations] == ["System/Related"]
    assert load_library(ENERGY_COMMUNITY).warnings == []  # the loader cannot know the tenant
    member = tenant.entities.create(
        "EnergyCommunity/Configuration", {"communityName": "Sonnenfeld", "communityCode": "EC-1"}
    )
    assert member.ck_type_id == "EnergyCommunity/Configuration"


def test_absent_platform_library_warnings_name_file_element_and_reference() -> None:
    basic, community = load_library(BASIC), load_library(ENERGY_COMMUNITY)
    resolve_model([basic, community])
    resolve_model([basic, community])  # a tenant's model is resolved again and again: once each
    assert [
        (Path(w.location or "").name, w.element, w.message.split(" that is not installed")[0])
        for w in community.warnings
    ] == [
        (
            "ConstructionKit",
            "EnergyCommunity-2.0.0",
            "depends on System.UI-[2.0,3.0), an OctoMesh platform library",
        ),
        (
            "settings.yaml",
            "EnergyCommunity/Configuration",
            "attribute 'Colors' (System.UI/Theme.Colors): System.UI is an OctoMesh platform "
            "library",
        ),
        (
            "settings.yaml",
            "EnergyCommunity/Configuration",
            "association System.UI/FolderItem to System.UI/Folder: System.UI is an OctoMesh "
            "platform library",
        ),
    ]


def test_what_refers_to_an_absent_platform_library_is_exported_again(
    tenant: workbench.Tenant,
) -> None:
    exported = tenant.ck.export_library("EnergyCommunity")
    assert "System.UI-[2.0,3.0)" in exported["dependencies"]
    settings = next(t for t in exported["types"] if t["typeId"] == "Configuration")
    assert {"id": "${System.UI}/Theme.Colors", "name": "Colors"} in settings["attributes"]
    assert settings["associations"][0]["targetCkTypeId"] == "${System.UI}/Folder"


def test_an_installed_platform_library_is_used(build: BuildLibrary) -> None:
    ui = build(
        "System.UI-2.1.0",
        attributes__a="attributes: [{id: Theme.Colors, valueType: StringArray}]",
        types__t="types: [{typeId: Folder, derivedFromCkTypeId: '${System}/Entity'}]",
        associations__r=(
            "associationRoles: [{id: FolderItem, outboundName: Folder, outboundMultiplicity: "
            "ZeroOrOne, inboundName: Items, inboundMultiplicity: N}]"
        ),
    )
    community = load_library(ENERGY_COMMUNITY)
    model = resolve_model([load_library(BASIC), ui, community])
    settings = model.type("EnergyCommunity/Configuration")
    assert settings.attributes["Colors"].attribute_id == "System.UI/Theme.Colors"
    assert "System.UI/FolderItem" in [a.role_id for a in settings.associations]
    assert community.warnings == []


def test_a_base_type_in_an_absent_platform_library_is_an_error(build: BuildLibrary) -> None:
    needs_base = build(
        "Dashboards-1.0.0",
        dependencies=["System.UI-[2.0,3.0)"],
        types__t="types: [{typeId: Board, derivedFromCkTypeId: '${System.UI}/Dashboard'}]",
    )
    with pytest.raises(ModelError) as error:
        resolve_model([needs_base])
    assert [str(d).split(": ", 2)[-1] for d in error.value.details] == [
        "derivedFromCkTypeId refers to unknown type System.UI/Dashboard; no library System.UI "
        "is in the model, import it first"
    ]


def test_a_missing_library_that_is_not_a_platform_library_stays_an_error(
    build: BuildLibrary,
) -> None:
    lonely = build("Lonely-1.0.0", dependencies=["Elsewhere-[1.0,2.0)"])
    with pytest.raises(ModelError, match="no library Elsewhere is available; import it first"):
        resolve_model([lonely])
