from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.ck.conftest import DEMO_ENERGY, FIXTURES, BuildLibrary
from workbench.ck import (
    CkLibrary,
    Multiplicity,
    ValueType,
    Version,
    dump_library,
    load_library,
    load_library_from_documents,
    load_library_from_text,
)
from workbench.errors import ModelError, NotFound


def only_detail(error: pytest.ExceptionInfo[ModelError]) -> str:
    assert len(error.value.details) == 1, error.value.details
    return str(error.value.details[0])


def test_demo_energy_loads_with_full_ids(demo_energy: CkLibrary) -> None:
    assert demo_energy.model_id == "Demo.Energy-1.0.0"
    assert [str(d) for d in demo_energy.dependencies] == ["System-[2.0,3.0)"]
    assert demo_energy.description == "A small metering model used by the examples and tests."
    assert set(demo_energy.types) == {
        f"Demo.Energy/{name}"
        for name in ("Meter", "EnergyMeter", "GasMeter", "NamedAsset", "Site", "Building")
    }
    meter = demo_energy.types["Demo.Energy/Meter"]
    assert meter.derived_from == "Demo.Energy/NamedAsset"
    assert meter.is_abstract
    assert [a.name for a in meter.own_attributes] == [
        "SerialNumber",
        "State",
        "InstalledAt",
        "Tags",
    ]
    assert meter.own_attributes[1].attribute_id == "Demo.Energy/MeterState"
    assert [(a.role_id, a.target_type_id) for a in meter.own_associations] == [
        ("System/ParentChild", "Demo.Energy/Building"),
        ("Demo.Energy/Supplies", "Demo.Energy/Meter"),
    ]
    assert meter.own_indexes[0].fields == [["SerialNumber"]]
    assert meter.source_file is not None
    assert meter.source_file.endswith("types/meters.yaml")
    state = demo_energy.attributes["Demo.Energy/MeterState"]
    assert (state.value_type, state.enum_id) == (ValueType.ENUM, "Demo.Energy/MeterState")
    assert demo_energy.attributes["Demo.Energy/Voltage"].metadata == {"unit": "V"}
    assert demo_energy.attributes["Demo.Energy/Phases"].record_id == "Demo.Energy/PhaseInfo"
    active = demo_energy.enums["Demo.Energy/MeterState"].by_name("active")
    assert active is not None
    assert active.key == 1
    supplies = demo_energy.roles["Demo.Energy/Supplies"]
    assert supplies.outbound_multiplicity is Multiplicity.ZERO_OR_ONE
    assert demo_energy.types["Demo.Energy/GasMeter"].is_final


def test_folder_above_construction_kit_is_accepted(demo_energy: CkLibrary) -> None:
    assert load_library(DEMO_ENERGY / "ConstructionKit") == demo_energy


def test_all_reference_forms_and_optional_keys(basic: CkLibrary) -> None:
    tree = basic.types["Basic/TreeNode"]
    assert tree.derived_from == "System/Entity"  # ${System}/Entity
    assert tree.own_attributes[0].attribute_id == "System/Name"  # plain Lib/X
    asset = basic.types["Basic/Asset"]
    status = asset.own_attributes[1]
    assert status.default_values == ["Active"]
    assert status.auto_complete_values == ["Active", "InService"]
    assert asset.own_attributes[0].auto_increment_reference == "AssetSerial"
    assert basic.attributes["Basic/City"].metadata == {"maxLength": "80"}
    assert basic.enums["Basic/AssetStatus"].is_extensible


def test_compiled_file_equals_folder(tmp_path: Path, demo_energy: CkLibrary) -> None:
    compiled = dump_library(demo_energy)
    assert compiled["modelId"] == "Demo.Energy-1.0.0"
    assert compiled["types"][0]["derivedFromCkTypeId"] == "${this}/NamedAsset"  # original text
    as_yaml = tmp_path / "Demo.Energy.yaml"
    as_yaml.write_text(yaml.safe_dump(compiled, sort_keys=False))
    as_json = tmp_path / "Demo.Energy.json"
    as_json.write_text(json.dumps(compiled))
    for path in (as_yaml, as_json):
        reloaded = load_library(path)
        assert reloaded == demo_energy
        assert dump_library(reloaded) == compiled
        assert reloaded.source == path


def test_dump_and_reload_keep_migrations(basic: CkLibrary) -> None:
    compiled = dump_library(basic)
    assert [m["scriptPath"] for m in compiled["migrations"]] == [
        "1.0.0-to-2.0.0.yaml",
        "2.0.0-to-2.1.0.yaml",
    ]
    reloaded = load_library_from_documents([("basic.yaml", compiled)])
    assert reloaded == basic
    assert dump_library(reloaded) == compiled


def test_dump_is_a_copy(demo_energy: CkLibrary) -> None:
    dump_library(demo_energy)["types"].clear()
    assert dump_library(demo_energy)["types"]


def test_load_from_text_and_schema_is_ignored(plant: CkLibrary) -> None:
    text = (FIXTURES / "Plant.compiled.yaml").read_text()
    assert "$schema" in text
    assert load_library_from_text(text, "Plant.compiled.yaml") == plant
    assert "$schema" not in dump_library(plant)
    assert plant.types["Plant/Pump"].derived_from == "Basic/Asset"


def test_documents_from_a_zip_with_a_prefix(basic: CkLibrary) -> None:
    folder = FIXTURES / "Basic" / "ConstructionKit"
    documents = [
        (f"ConstructionKit/{p.relative_to(folder).as_posix()}", yaml.safe_load(p.read_text()))
        for p in sorted(folder.rglob("*.yaml"))
    ]
    assert load_library_from_documents(documents) == basic


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_library(tmp_path / "nope")
    with pytest.raises(NotFound, match=r"holds no ckModel\.yaml"):
        load_library(tmp_path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ckModel.yaml").write_text("modelId: Broken-1.0.0\n")
    (tmp_path / "types").mkdir()
    (tmp_path / "types" / "bad.yaml").write_text("types: [\n")
    with pytest.raises(ModelError, match="invalid YAML") as error:
        load_library(tmp_path)
    assert "types/bad.yaml" in only_detail(error)


def test_model_id_must_be_name_version() -> None:
    with pytest.raises(ModelError) as error:
        load_library_from_documents([("ckModel.yaml", {"modelId": "No Name-1.0"})])
    assert "ckModel.yaml: modelId: model id 'No Name-1.0' has an invalid library name" in (
        only_detail(error)
    )


def test_model_id_without_version_reads_as_0_0_0_with_a_warning() -> None:
    library = load_library_from_documents([("ckModel.yaml", {"modelId": "Octo.Demo"})])
    assert library.model_id == "Octo.Demo-0.0.0"
    assert [str(w) for w in library.warnings] == [
        "ckModel.yaml: modelId: modelId 'Octo.Demo' has no version; read as Octo.Demo-0.0.0, "
        "write it as Octo.Demo-1.0.0"
    ]
    assert dump_library(library)["modelId"] == "Octo.Demo"  # exported as written
    with pytest.raises(ModelError, match=r"has no version.*an error under --strict"):
        load_library_from_documents([("ckModel.yaml", {"modelId": "Octo.Demo"})], strict=True)


def test_exactly_one_model_document() -> None:
    with pytest.raises(ModelError, match=r"exactly one ckModel\.yaml"):
        load_library_from_documents([("types.yaml", {"types": []})])


def test_bad_dependency() -> None:
    with pytest.raises(ModelError) as error:
        load_library_from_documents(
            [("ckModel.yaml", {"modelId": "A-1.0.0", "dependencies": ["Basic-[x"]})]
        )
    assert "ckModel.yaml: dependencies: dependency 'Basic-[x' is not of the form" in (
        only_detail(error)
    )


def test_dependency_without_range_accepts_any_version_with_a_warning() -> None:
    library = load_library_from_documents(
        [("ckModel.yaml", {"modelId": "A-1.0.0", "dependencies": ["Basic"]})]
    )
    (dependency,) = library.dependencies
    assert (dependency.name, str(dependency)) == ("Basic", "Basic-*")
    assert dependency.range.contains(Version(0))
    assert dependency.range.contains(Version(99))
    assert "dependency 'Basic' has no version range and accepts any version" in str(
        library.warnings[0]
    )


def test_unknown_key_is_a_warning_naming_file_element_and_key(build: BuildLibrary) -> None:
    library = build(types__meters="types: [{typeId: Meter, isCool: true}]")
    (warning,) = (str(w) for w in library.warnings)
    assert warning.startswith("types/meters.yaml: Test/Meter: unknown key 'isCool' in type")
    assert "is kept but not used; known keys:" in warning
    assert dump_library(library)["types"] == [{"typeId": "Meter", "isCool": True}]


def test_unknown_key_is_an_error_under_strict(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        load_library_from_documents(
            [
                ("ckModel.yaml", {"modelId": "Test-1.0.0"}),
                ("t.yaml", {"types": [{"typeId": "Meter", "isCool": True}]}),
            ],
            strict=True,
        )
    assert only_detail(error).endswith("(an error under --strict)")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("attributes: [{valueType: String}]", "attribute needs 'id'"),
        ("types: [{derivedFromCkTypeId: '${System}/Entity'}]", "type needs 'typeId'"),
        ("attributes: [{id: A}]", "missing key 'valueType' in attribute"),
        ("types: [{typeId: T, isAbstract: yes please}]", "isAbstract must be true or false"),
        ("types: {typeId: T}", "'types' must be a list"),
        ("types: [{typeId: 'has space'}]", "a plain id such as EnergyMeter"),
    ],
)
def test_format_errors(build: BuildLibrary, text: str, reason: str) -> None:
    with pytest.raises(ModelError) as error:
        build(elements=text)
    assert reason in only_detail(error)
    assert only_detail(error).startswith("elements.yaml")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("attributes: [{id: A, valueType: String, unit: V}]", "unknown key 'unit' in attribute"),
        (
            "types: [{typeId: T, attributes: [{id: '${this}/A', nam: A}]}]",
            "unknown key 'nam' in attribute entry 0",
        ),
        (
            "types: [{typeId: T, associations: "
            "[{id: '${System}/Related', targetCkTypeId: '${System}/Entity', target: X}]}]",
            "unknown key 'target' in association 0",
        ),
        ("enums: [{enumId: E, values: [{key: 0, name: A, label: a}]}]", "unknown key 'label'"),
        ("records: [{recordId: R, isFinal: true}]", "unknown key 'isFinal' in record"),
        (
            "types: [{typeId: T, indexes: [{indexType: Text, fields: [{attributePaths: [A]}], "
            "sparse: true}]}]",
            "unknown key 'sparse' in index 0",
        ),
        ("kinds: []", "unknown key 'kinds' in a library file"),
        ("dependencies: []", "unknown key 'dependencies' in a library file"),
        (
            "attributes: [{id: A, valueType: String, metaData: [{key: u, value: V, lang: en}]}]",
            "unknown key 'lang' in metaData entry 'u'",
        ),
    ],
)
def test_unknown_keys_are_warnings(build: BuildLibrary, text: str, reason: str) -> None:
    library = build(elements=text)
    (warning,) = (str(w) for w in library.warnings)
    assert reason in warning
    assert warning.startswith("elements.yaml")


def test_duplicate_element_id_across_files(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(
            types__a="types: [{typeId: Meter}]",
            types__b="types: [{typeId: Meter}]",
        )
    assert only_detail(error) == (
        "types/b.yaml: Test/Meter: duplicate type id 'Meter': also declared in types/a.yaml"
    )


def test_same_id_for_different_kinds_is_fine(build: BuildLibrary) -> None:
    library = build(
        x="""
attributes: [{id: State, valueType: Enum, valueCkEnumId: '${this}/State'}]
enums: [{enumId: State, values: [{key: 0, name: Off}]}]
""",
    )
    assert "Test/State" in library.attributes
    assert library.enums["Test/State"].values[0].name == "Off"  # YAML 1.2: not a boolean


def test_unknown_value_type_lists_the_valid_ones(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(attributes="attributes: [{id: Budget, valueType: Decimal}]")
    detail = only_detail(error)
    assert detail.startswith("attributes.yaml: Test/Budget: unknown valueType 'Decimal'")
    assert "String, Boolean, Int, Int64, Double" in detail
    assert "GeospatialPoint" in detail


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("{id: S, valueType: Enum}", "an Enum attribute needs valueCkEnumId"),
        ("{id: S, valueType: Record}", "a Record attribute needs valueCkRecordId"),
        ("{id: S, valueType: RecordArray}", "a RecordArray attribute needs valueCkRecordId"),
        (
            "{id: S, valueType: String, valueCkEnumId: '${this}/E'}",
            "valueCkEnumId is only allowed on Enum attributes, not on String",
        ),
        (
            "{id: S, valueType: Enum, valueCkEnumId: '${this}/E', valueCkRecordId: '${this}/R'}",
            "valueCkRecordId is only allowed on Record and RecordArray attributes, not on Enum",
        ),
        ("{id: S, valueType: String, metaData: {unit: V}}", "metaData must be a list"),
    ],
)
def test_enum_and_record_references_on_attributes(
    build: BuildLibrary, entry: str, reason: str
) -> None:
    with pytest.raises(ModelError) as error:
        build(attributes=f"attributes: [{entry}]")
    assert only_detail(error).startswith(f"attributes.yaml: Test/S: {reason}")


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ("[{key: 0, name: A}, {key: 0, name: B}]", "duplicate enum key 0 (B)"),
        ("[{key: 0, name: A}, {key: 1, name: a}]", "duplicate enum name 'a'"),
        ("[{key: zero, name: A}]", "enum value 0 key must be an integer, not 'zero'"),
        ("[]", "an enum needs at least one value"),
    ],
)
def test_enum_values(build: BuildLibrary, values: str, reason: str) -> None:
    with pytest.raises(ModelError) as error:
        build(enums=f"enums: [{{enumId: E, values: {values}}}]")
    assert only_detail(error) == f"enums.yaml: Test/E: {reason}"


def test_multiplicity_must_be_known(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(
            roles="""
associationRoles:
  - {id: Feeds, outboundName: Feeds, outboundMultiplicity: Many,
     inboundName: FedBy, inboundMultiplicity: N}
"""
        )
    assert only_detail(error) == (
        "roles.yaml: Test/Feeds: outboundMultiplicity 'Many' is not valid; "
        "use one of: ZeroOrOne | One | N"
    )


def test_index_type_must_be_known(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(
            t="types: [{typeId: T, indexes: "
            "[{indexType: Hashed, fields: [{attributePaths: [A]}]}]}]"
        )
    assert "T: index 0 indexType 'Hashed' is not valid; use one of: Ascending | Text" in (
        only_detail(error)
    )


def test_reference_syntax(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(t="types: [{typeId: A, derivedFromCkTypeId: Entity}]")
    assert only_detail(error).startswith(
        "t.yaml: Test/A: derivedFromCkTypeId: reference 'Entity' is not valid"
    )


def test_referenced_libraries_are_recorded_for_the_resolver(build: BuildLibrary) -> None:
    library = build(t="types: [{typeId: B, derivedFromCkTypeId: '${Basic}/Asset'}]")
    assert library.referenced_libraries == {
        "Basic": ("t.yaml", "Test/B: derivedFromCkTypeId '${Basic}/Asset'")
    }


def test_this_model_placeholder_is_accepted(build: BuildLibrary) -> None:
    library = build(
        a="""
attributes: [{id: A, valueType: String}]
types: [{typeId: T, attributes: [{id: '${thisModel}/A'}]}]
"""
    )
    member = library.types["Test/T"].own_attributes[0]
    assert (member.attribute_id, member.name) == ("Test/A", "A")  # name defaults to the id
    assert member.attribute is library.attributes["Test/A"]


def test_all_errors_are_collected(build: BuildLibrary) -> None:
    with pytest.raises(ModelError) as error:
        build(
            a="attributes: [{id: A, valueType: Nope}, {id: B, valueType: Enum}]",
            b="types: [{typeId: T, isAbstract: 1}]",
        )
    assert [(d.location, d.element) for d in error.value.details] == [
        ("a.yaml", "Test/A"),
        ("a.yaml", "Test/B"),
        ("b.yaml", "Test/T"),
    ]
    assert "construction kit library Test-1.0.0 has errors" in str(error.value)


def test_version_is_parsed(basic: CkLibrary) -> None:
    assert basic.version == Version(2, 1, 0)
