"""Every model-level error kind: each detail names the file, the element and the reason."""

from __future__ import annotations

import pytest

from tests.ck.conftest import BuildLibrary
from workbench.ck import CkLibrary, resolve_model
from workbench.ck.naming import graphql_enum_type_name, graphql_object_type_names
from workbench.errors import ModelError

ATTRIBUTES = """
attributes:
  - {id: Text, valueType: String}
  - {id: Point, valueType: Record, valueCkRecordId: '${this}/Point'}
records:
  - recordId: Point
    attributes: [{id: '${this}/Text', name: X}]
enums:
  - enumId: Mode
    values: [{key: 0, name: Off}, {key: 1, name: On}]
"""


def problems(*libraries: CkLibrary) -> list[str]:
    with pytest.raises(ModelError) as error:
        resolve_model(libraries)
    return [str(detail) for detail in error.value.details]


def only_problem(*libraries: CkLibrary) -> str:
    found = problems(*libraries)
    assert len(found) == 1, found
    return found[0]


def test_valid_fixture_resolves(build: BuildLibrary) -> None:
    resolve_model([build(common=ATTRIBUTES)])


@pytest.mark.parametrize(
    ("types", "reason"),
    [
        (
            "[{typeId: T, attributes: [{id: '${this}/Nope', name: Nope}]}]",
            "attribute 'Nope' id refers to unknown attribute Test/Nope; "
            "Test declares no attribute of that id",
        ),
        (
            "[{typeId: T, derivedFromCkTypeId: '${this}/Base'}]",
            "derivedFromCkTypeId refers to unknown type Test/Base",
        ),
        (
            "[{typeId: T, associations: "
            "[{id: '${this}/Owns', targetCkTypeId: '${System}/Entity'}]}]",
            "association id refers to unknown association role Test/Owns",
        ),
        (
            "[{typeId: T, associations: [{id: '${System}/Related', targetCkTypeId: '${this}/X'}]}]",
            "association System/Related targetCkTypeId refers to unknown type Test/X",
        ),
        (
            "[{typeId: T, associations: "
            "[{id: '${System}/Related', targetCkTypeId: '${this}/Point'}]}]",
            "association System/Related targetCkTypeId Test/Point is a record, not a type",
        ),
        (
            "[{typeId: T, derivedFromCkTypeId: '${this}/Mode'}]",
            "derivedFromCkTypeId Test/Mode is an enum, not a type",
        ),
        (
            "[{typeId: T, attributes: [{id: '${System}/Nope'}]}]",
            "attribute 'Nope' id refers to unknown attribute System/Nope",
        ),
    ],
)
def test_unknown_or_wrong_references_on_types(build: BuildLibrary, types: str, reason: str) -> None:
    library = build(common=ATTRIBUTES, types__t=f"types: {types}")
    problem = only_problem(library)
    assert problem.startswith(f"types/t.yaml: Test/T: {reason}")


def test_unknown_library_in_reference(build: BuildLibrary) -> None:
    library = build(
        "Test-1.0.0",
        ("System-[2.0,3.0)", "Basic-1.0"),
        t="types: [{typeId: T, derivedFromCkTypeId: '${Basic}/Asset'}]",
    )
    with pytest.raises(ModelError, match=r"depends on Basic-1\.0 but no library Basic"):
        resolve_model([library])


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        (
            "[{id: A, valueType: Enum, valueCkEnumId: '${this}/Point'}]",
            "valueCkEnumId Test/Point is a record, not an enum",
        ),
        (
            "[{id: A, valueType: Enum, valueCkEnumId: '${this}/Missing'}]",
            "valueCkEnumId refers to unknown enum Test/Missing",
        ),
        (
            "[{id: A, valueType: RecordArray, valueCkRecordId: '${this}/Mode'}]",
            "valueCkRecordId Test/Mode is an enum, not a record",
        ),
        (
            "[{id: A, valueType: Record, valueCkRecordId: '${System}/Entity'}]",
            "valueCkRecordId System/Entity is a type, not a record",
        ),
    ],
)
def test_enum_and_record_references(build: BuildLibrary, attributes: str, reason: str) -> None:
    library = build(common=ATTRIBUTES, attributes__a=f"attributes: {attributes}")
    assert only_problem(library).startswith(f"attributes/a.yaml: Test/A: {reason}")


def test_record_references(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES,
        r="""
records:
  - recordId: R
    derivedFromCkRecordId: ${this}/Nope
    attributes: [{id: '${this}/Missing', name: M}]
""",
    )
    assert problems(library) == [
        "r.yaml: Test/R: derivedFromCkRecordId refers to unknown record Test/Nope; "
        "Test declares no record of that id",
        "r.yaml: Test/R: attribute 'M' id refers to unknown attribute Test/Missing; "
        "Test declares no attribute of that id",
    ]


def test_inheritance_cycle_of_types(build: BuildLibrary) -> None:
    library = build(
        t="""
types:
  - {typeId: A, derivedFromCkTypeId: '${this}/B'}
  - {typeId: B, derivedFromCkTypeId: '${this}/A'}
"""
    )
    assert problems(library) == [
        "t.yaml: Test/A: inheritance cycle: Test/A -> Test/B -> Test/A; "
        "break it by changing a base type",
        "t.yaml: Test/B: inheritance cycle: Test/B -> Test/A -> Test/B; "
        "break it by changing a base type",
    ]


def test_inheritance_cycle_of_records(build: BuildLibrary) -> None:
    library = build(r="records: [{recordId: R, derivedFromCkRecordId: '${this}/R'}]")
    assert only_problem(library) == (
        "r.yaml: Test/R: inheritance cycle: Test/R -> Test/R; break it by changing a base record"
    )


def test_deriving_from_a_final_type(demo_energy: CkLibrary, build: BuildLibrary) -> None:
    library = build(
        "Ext-1.0.0",
        ("System-[2.0,3.0)", "Demo.Energy-[1.0,2.0)"),
        t="types: [{typeId: BigGasMeter, derivedFromCkTypeId: '${Demo.Energy}/GasMeter'}]",
    )
    assert only_problem(demo_energy, library).startswith(
        "t.yaml: Ext/BigGasMeter: derives from Demo.Energy/GasMeter, which is final"
    )


def test_abstract_and_final(build: BuildLibrary) -> None:
    library = build(t="types: [{typeId: T, isAbstract: true, isFinal: true}]")
    assert only_problem(library).startswith("t.yaml: Test/T: a type cannot be both abstract and")


def test_attribute_name_declared_twice_along_the_chain(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES,
        t="""
types:
  - typeId: Base
    attributes: [{id: '${System}/Name', name: Name}]
  - typeId: Sub
    derivedFromCkTypeId: ${this}/Base
    attributes: [{id: '${this}/Text', name: name}]
""",
    )
    assert only_problem(library).startswith(
        "t.yaml: Test/Sub: attribute name 'name' is declared twice along the inheritance chain "
        "(already as 'Name' on Test/Base); names are case-insensitive"
    )


def test_attribute_name_declared_twice_on_one_record(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES,
        r="""
records:
  - recordId: R
    attributes: [{id: '${this}/Text', name: A}, {id: '${System}/Name', name: A}]
""",
    )
    assert (
        "r.yaml: Test/R: attribute name 'A' is declared twice along the inheritance chain "
        "(already as 'A' on this record)" in only_problem(library)
    )


def test_graphql_type_name_clash_across_libraries(build: BuildLibrary) -> None:
    dotted = build("A.B-1.0.0", c="types: [{typeId: C}]")
    plain = build("AB-1.0.0", c="types: [{typeId: C}]")
    found = problems(dotted, plain)
    assert found == [
        "c.yaml: AB/C: GraphQL name clash: type AB/C and type A.B/C both become GraphQL type "
        "'ABC'; rename one of them",
        "c.yaml: AB/C: GraphQL name clash: input type of type AB/C and input type of type A.B/C "
        "both become GraphQL type 'ABCInput'; rename one of them",
    ]


def test_an_enum_named_like_a_type_gets_an_enum_suffix(build: BuildLibrary) -> None:
    library = build(
        x="types: [{typeId: Mode}]\nenums: [{enumId: Mode, values: [{key: 0, name: A}]}]"
    )
    model = resolve_model([library])  # published kits do this (InvoicePeriod): no clash
    taken = graphql_object_type_names(model)
    assert graphql_enum_type_name("Test/Mode", taken) == "TestModeEnum"
    assert graphql_enum_type_name("Test/Mode") == "TestMode"


def test_graphql_clash_between_type_and_suffixed_enum(build: BuildLibrary) -> None:
    library = build(
        x="types: [{typeId: Mode}, {typeId: ModeEnum}]\n"
        "enums: [{enumId: Mode, values: [{key: 0, name: A}]}]"
    )
    assert only_problem(library).startswith(
        "x.yaml: Test/Mode: GraphQL name clash: enum Test/Mode and type Test/ModeEnum both become"
    )


def test_attribute_field_clashes_with_system_field(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES, t="types: [{typeId: T, attributes: [{id: '${this}/Text', name: RtId}]}]"
    )
    assert only_problem(library) == (
        "t.yaml: Test/T: GraphQL field name clash: attribute 'RtId' (on Test/T) and system field "
        "all become field 'rtId'; rename one"
    )


def test_attribute_field_clashes_with_association(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES,
        t="""
types:
  - typeId: T
    attributes: [{id: '${this}/Text', name: Parent}]
    associations: [{id: '${System}/ParentChild', targetCkTypeId: '${this}/T'}]
""",
    )
    assert only_problem(library) == (
        "t.yaml: Test/T: GraphQL field name clash: attribute 'Parent' (on Test/T) and outbound "
        "association 'Parent' of role System/ParentChild all become field 'parent'; rename one"
    )


def test_two_roles_with_the_same_end_name(build: BuildLibrary) -> None:
    library = build(
        t="""
associationRoles:
  - {id: Feeds, outboundName: Parent, outboundMultiplicity: N, inboundName: FedBy,
     inboundMultiplicity: N}
types:
  - typeId: T
    associations:
      - {id: '${System}/ParentChild', targetCkTypeId: '${System}/Entity'}
      - {id: '${this}/Feeds', targetCkTypeId: '${System}/Entity'}
""",
    )
    assert (
        "outbound association 'Parent' of role System/ParentChild and outbound association "
        "'Parent' of role Test/Feeds all become field 'parent'" in only_problem(library)
    )


def test_invalid_graphql_attribute_name(build: BuildLibrary) -> None:
    library = build(
        common=ATTRIBUTES,
        t="types: [{typeId: T, attributes: [{id: '${this}/Text', name: Max Value}]}]",
    )
    assert only_problem(library).startswith(
        "t.yaml: Test/T: attribute name 'Max Value' is not a valid GraphQL name"
    )


def test_enum_value_names_clash_in_graphql(build: BuildLibrary) -> None:
    library = build(
        e="enums: [{enumId: E, values: [{key: 0, name: InService}, {key: 1, name: In_Service}]}]"
    )
    assert only_problem(library) == (
        "e.yaml: Test/E: GraphQL name clash: enum values 'InService' and 'In_Service' both become "
        "'IN_SERVICE'; rename one"
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("Nope", "type Test/T has no attribute 'Nope'; its attributes are: Location, Name"),
        ("Name.X", "attribute 'Name' is not a record, so the path cannot continue"),
        ("Location.Y", "record Test/Point has no attribute 'Y'; its attributes are: X"),
    ],
)
def test_index_paths_must_name_attributes(build: BuildLibrary, path: str, reason: str) -> None:
    library = build(
        common=ATTRIBUTES,
        t=f"""
types:
  - typeId: T
    attributes:
      - {{id: '${{System}}/Name', name: Name}}
      - {{id: '${{this}}/Point', name: Location}}
    indexes:
      - {{indexType: Ascending, fields: [{{attributePaths: [location.x, {path}]}}]}}
""",
    )
    assert only_problem(library) == f"t.yaml: Test/T: Ascending index path '{path}': {reason}"


def test_all_problems_are_raised_together(build: BuildLibrary) -> None:
    library = build(
        t="""
types:
  - {typeId: A, derivedFromCkTypeId: '${this}/Nope'}
  - {typeId: B, attributes: [{id: '${this}/Nope'}]}
"""
    )
    with pytest.raises(ModelError, match="the construction kit model is invalid") as error:
        resolve_model([library])
    assert [(d.location, d.element) for d in error.value.details] == [
        ("t.yaml", "Test/A"),
        ("t.yaml", "Test/B"),
    ]
