"""User-facing filters, sorts and searches compiled into the storage query model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.ck.model import CkModel
from workbench.errors import ValidationError
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    Operator,
    SortKey,
    TextSearch,
)
from workbench.runtime.filters import (
    FieldFilter,
    compile_filters,
    compile_search,
    compile_sort,
    parse_cli_filter,
    parse_cli_sort,
)

METER = "Demo.Energy/EnergyMeter"
SITE = "Demo.Energy/Site"
PARENT_CHILD = "System/ParentChild"
SUPPLIES = "Demo.Energy/Supplies"
HOLDS = "Test.Values/Holds"


def _compile(model: CkModel, type_id: str, *filters: str) -> tuple[Any, ...]:
    return compile_filters(model, type_id, [parse_cli_filter(f) for f in filters])


def _errors(model: CkModel, type_id: str, *filters: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _compile(model, type_id, *filters)
    return [d.message for d in caught.value.details]


# --- CLI parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "operator", "value"),
    [
        ("state EQUALS Active", "state", Operator.EQUALS, "Active"),
        ("phaseL1.voltage GREATER_THAN 230", "phaseL1.voltage", Operator.GREATER_THAN, "230"),
        ("state equals Active", "state", Operator.EQUALS, "Active"),
        ("voltage Greater_Equal_Than 1", "voltage", Operator.GREATER_EQUAL_THAN, "1"),
        ("voltage>=230", "voltage", Operator.GREATER_EQUAL_THAN, "230"),
        ("voltage >= 230", "voltage", Operator.GREATER_EQUAL_THAN, "230"),
        ("voltage<=230", "voltage", Operator.LESS_EQUAL_THAN, "230"),
        ("voltage<230", "voltage", Operator.LESS_THAN, "230"),
        ("voltage > -5", "voltage", Operator.GREATER_THAN, "-5"),
        ("state=Active", "state", Operator.EQUALS, "Active"),
        ("state == Active", "state", Operator.EQUALS, "Active"),
        ("state!=Active", "state", Operator.NOT_EQUALS, "Active"),
        ("state <> Active", "state", Operator.NOT_EQUALS, "Active"),
        ("name EQUALS 'Hall A'", "name", Operator.EQUALS, "Hall A"),
        ('name = "Hall A"', "name", Operator.EQUALS, "Hall A"),
        ("name EQUALS Hall A", "name", Operator.EQUALS, "Hall A"),
        ("name EQUALS ''", "name", Operator.EQUALS, ""),
        ("name = a=b", "name", Operator.EQUALS, "a=b"),
        ("name LIKE %a>b%", "name", Operator.LIKE, "%a>b%"),
        ("parent->name = 'Hall A'", "parent->name", Operator.EQUALS, "Hall A"),
        ("parent -> name EQUALS x", "parent->name", Operator.EQUALS, "x"),
        ("parent->parent->name>=x", "parent->parent->name", Operator.GREATER_EQUAL_THAN, "x"),
        ("description IS_NULL", "description", Operator.IS_NULL, None),
        ("description is_not_null ", "description", Operator.IS_NOT_NULL, None),
        ("state IN Active,Faulty", "state", Operator.IN, ["Active", "Faulty"]),
        ("name IN 'Hall A', 'Hall, B'", "name", Operator.IN, ["Hall A", "Hall, B"]),
        ("voltage NOT_IN [230, 231.5]", "voltage", Operator.NOT_IN, [230, 231.5]),
        ("voltage BETWEEN 220,240", "voltage", Operator.BETWEEN, ["220", "240"]),
        ("tags ANY_EQ main", "tags", Operator.ANY_EQ, "main"),
    ],
)
def test_parse_cli_filter(text: str, path: str, operator: Operator, value: Any) -> None:
    assert parse_cli_filter(text) == FieldFilter(path, operator, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state", "cannot read the filter 'state'; write 'PATH OPERATOR VALUE'"),
        ("", "cannot read the filter ''"),
        ("state BIGGER 3", "unknown filter operator 'BIGGER'; use one of EQUALS, NOT_EQUALS"),
        ("state EQUALS", "filter 'state EQUALS': EQUALS needs a value after the operator"),
        ("voltage >=", "filter 'voltage >=': GREATER_EQUAL_THAN needs a value"),
        ("description IS_NULL x", "IS_NULL takes no value, got 'x'; write 'description IS_NULL'"),
        ("name IN 'open", "has an unclosed quote"),
    ],
)
def test_parse_cli_filter_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_cli_filter(text)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("serialNumber", ("serialNumber", False)),
        ("+serialNumber", ("serialNumber", False)),
        ("-serialNumber", ("serialNumber", True)),
        ("serialNumber:desc", ("serialNumber", True)),
        ("serialNumber:DESCENDING", ("serialNumber", True)),
        ("serialNumber:asc", ("serialNumber", False)),
        (" phaseL1.voltage : desc ", ("phaseL1.voltage", True)),
    ],
)
def test_parse_cli_sort(text: str, parsed: tuple[str, bool]) -> None:
    assert parse_cli_sort(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("serialNumber:up", "unknown direction 'up'"),
        ("-", "names no attribute"),
        ("", "names no attribute"),
        (":desc", "names no attribute"),
    ],
)
def test_parse_cli_sort_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_cli_sort(text)


# --- paths ------------------------------------------------------------------------------------


def test_attributes_system_fields_and_records(demo_model: CkModel) -> None:
    assert _compile(
        demo_model,
        METER,
        "serialNumber = EM-0001",
        "SerialNumber LIKE EM%",
        "state IN Active,Faulty",
        "phaseL1.voltage GREATER_THAN 230",
        "rtId = 6560a1b2c3d4e5f607182932",
        "rtVersion >= 2",
        "rtCreationDateTime < 2024-01-01T00:00:00Z",
        "rtWellKnownName IS_NOT_NULL",
    ) == (
        Condition(("attributes", "SerialNumber"), Operator.EQUALS, "EM-0001"),
        Condition(("attributes", "SerialNumber"), Operator.LIKE, "EM%"),
        Condition(("attributes", "State"), Operator.IN, [1, 2]),
        Condition(("attributes", "PhaseL1", "Voltage"), Operator.GREATER_THAN, 230.0),
        Condition(("rtId",), Operator.EQUALS, "6560a1b2c3d4e5f607182932"),
        Condition(("rtVersion",), Operator.GREATER_EQUAL_THAN, 2),
        Condition(("rtCreationDateTime",), Operator.LESS_THAN, datetime(2024, 1, 1, tzinfo=UTC)),
        Condition(("rtWellKnownName",), Operator.IS_NOT_NULL, None),
    )


def test_paths_into_record_arrays_match_any_element(demo_model: CkModel) -> None:
    assert _compile(demo_model, METER, "phases.current < 5") == (
        Condition(("attributes", "Phases", ANY_ELEMENT, "Current"), Operator.LESS_THAN, 5.0),
    )


def test_association_paths(demo_model: CkModel) -> None:
    name_is = Condition(("attributes", "Name"), Operator.EQUALS, "Hall A")
    assert _compile(demo_model, METER, "parent->name = 'Hall A'") == (
        AssociationCondition(PARENT_CHILD, "outbound", (name_is,)),
    )
    assert _compile(demo_model, METER, "parent->parent->location = Linz") == (
        AssociationCondition(
            PARENT_CHILD,
            "outbound",
            (
                AssociationCondition(
                    PARENT_CHILD,
                    "outbound",
                    (Condition(("attributes", "Location"), Operator.EQUALS, "Linz"),),
                ),
            ),
        ),
    )
    assert _compile(demo_model, "Demo.Energy/Building", "children->serialNumber = EM-0001") == (
        AssociationCondition(
            PARENT_CHILD,
            "inbound",
            (Condition(("attributes", "SerialNumber"), Operator.EQUALS, "EM-0001"),),
        ),
    )
    assert _compile(demo_model, METER, "supplies->rtId = x", "suppliedBy->state = Faulty") == (
        AssociationCondition(SUPPLIES, "inbound", (Condition(("rtId",), Operator.EQUALS, "x"),)),
        AssociationCondition(
            SUPPLIES, "outbound", (Condition(("attributes", "State"), Operator.EQUALS, 2),)
        ),
    )


def test_attributes_of_subtypes_resolve_when_unambiguous(demo_model: CkModel) -> None:
    # Meter is abstract; Voltage exists on its subtype EnergyMeter only
    assert _compile(demo_model, "Demo.Energy/Meter", "voltage > 3") == (
        Condition(("attributes", "Voltage"), Operator.GREATER_THAN, 3.0),
    )
    # from a Site, children are Buildings, whose children are Meters (voltage on EnergyMeter)
    assert _compile(demo_model, SITE, "children->children->voltage > 3") == (
        AssociationCondition(
            PARENT_CHILD,
            "inbound",
            (
                AssociationCondition(
                    PARENT_CHILD,
                    "inbound",
                    (Condition(("attributes", "Voltage"), Operator.GREATER_THAN, 3.0),),
                ),
            ),
        ),
    )


def test_subtype_attributes_defined_differently_are_rejected(values_model: CkModel) -> None:
    assert _compile(
        values_model, "Test.Values/Holder", "holds->label = x", "holds->weight > 1"
    ) == (
        AssociationCondition(
            HOLDS, "outbound", (Condition(("attributes", "Label"), Operator.EQUALS, "x"),)
        ),
        AssociationCondition(
            HOLDS, "outbound", (Condition(("attributes", "Weight"), Operator.GREATER_THAN, 1.0),)
        ),
    )
    assert _errors(values_model, "Test.Values/Holder", "holds->size = 3") == [
        "'size' in path 'holds->size' is ambiguous: subtypes of Test.Values/Shape define it "
        "differently (Test.Values/Box: Size (Int); Test.Values/Ball: Size (String)); query one "
        "subtype instead"
    ]
    assert _compile(values_model, "Test.Values/Box", "heldBy->name = h") == (
        AssociationCondition(
            HOLDS, "inbound", (Condition(("attributes", "Name"), Operator.EQUALS, "h"),)
        ),
    )


def test_derived_record_fields_resolve(values_model: CkModel) -> None:
    assert _compile(values_model, "Test.Values/Thing", "limits.unit = V", "history.low > 1") == (
        Condition(("attributes", "Limits", "Unit"), Operator.EQUALS, "V"),
        Condition(("attributes", "History", ANY_ELEMENT, "Low"), Operator.GREATER_THAN, 1.0),
    )


# --- errors -----------------------------------------------------------------------------------


def test_unknown_attribute_names_the_path_the_type_and_the_valid_names(
    demo_model: CkModel,
) -> None:
    with pytest.raises(ValidationError) as caught:
        _compile(demo_model, METER, "state = Active", "colour = red")
    (detail,) = caught.value.details
    assert caught.value.message == f"1 invalid filter on {METER}"
    assert detail.location == "filter[1]"
    assert detail.element == "colour"
    assert detail.message == (
        f"unknown attribute 'colour' in path 'colour' for {METER}; valid names: activePower, "
        "current, description, energyImported, installedAt, name, phaseL1, phases, serialNumber, "
        "state, tags, voltage; system fields: rtId, ckTypeId, rtWellKnownName, "
        "rtCreationDateTime, rtChangedDateTime, rtVersion; associations: parent->, "
        "relatesFrom->, relatesTo->, suppliedBy->, supplies->, usedBy->"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "owner->name = x",
            f"'owner' in path 'owner->name' is not an association of {METER}; associations: "
            "parent, relatesFrom, relatesTo, suppliedBy, supplies",
        ),
        (
            "parent->colour = x",
            "unknown attribute 'colour' in path 'parent->colour' for Demo.Energy/Building; "
            "valid names: description, floorCount, name;",
        ),
        (
            "phaseL1.frequency > 1",
            "unknown field 'frequency' in path 'phaseL1.frequency': record Demo.Energy/PhaseInfo "
            "has the fields current, voltage",
        ),
        (
            "voltage.value > 1",
            "path 'voltage.value': 'voltage' is a Double attribute and has no fields; only "
            "Record and RecordArray attributes can be followed by '.'",
        ),
        ("phaseL1..voltage = 1", "path 'phaseL1..voltage' has an empty part around '.'"),
    ],
)
def test_unknown_paths(demo_model: CkModel, text: str, message: str) -> None:
    (error,) = _errors(demo_model, METER, text)
    assert error.startswith(message)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("parent->", "path 'parent->' has an empty part around '->'"),
        ("", "the attribute path is empty; name an attribute such as 'name'"),
    ],
)
def test_malformed_paths(demo_model: CkModel, path: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        compile_filters(demo_model, METER, [FieldFilter(path, Operator.EQUALS, "x")])
    assert [d.message for d in caught.value.details] == [message]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "voltage LIKE 23%",
            f"operator LIKE does not apply to 'voltage' (Double) of {METER}; operators that fit: "
            "EQUALS, NOT_EQUALS, LESS_THAN, LESS_EQUAL_THAN, GREATER_THAN, GREATER_EQUAL_THAN, "
            "IN, NOT_IN, BETWEEN, IS_NULL, IS_NOT_NULL",
        ),
        (
            "state > Active",
            f"operator GREATER_THAN does not apply to 'state' (Enum) of {METER}; operators that "
            "fit: EQUALS, NOT_EQUALS, IN, NOT_IN, IS_NULL, IS_NOT_NULL",
        ),
        (
            "phaseL1 > 1",
            f"operator GREATER_THAN does not apply to 'phaseL1' (Record) of {METER}; operators "
            "that fit: IS_NULL, IS_NOT_NULL",
        ),
        (
            "serialNumber ANY_EQ x",
            f"operator ANY_EQ does not apply to 'serialNumber' (String) of {METER}; operators "
            "that fit: EQUALS, NOT_EQUALS, LESS_THAN",
        ),
        (
            "tags = main",
            f"operator EQUALS does not apply to 'tags' (StringArray) of {METER}; operators that "
            "fit: ANY_EQ, ANY_LIKE, IS_NULL, IS_NOT_NULL",
        ),
    ],
)
def test_operators_that_do_not_fit_say_which_do(
    demo_model: CkModel, text: str, message: str
) -> None:
    (error,) = _errors(demo_model, METER, text)
    assert error.startswith(message)


def test_boolean_attributes_take_no_ordering(values_model: CkModel) -> None:
    (error,) = _errors(values_model, "Test.Values/Thing", "flag > true")
    assert error.startswith("operator GREATER_THAN does not apply to 'flag' (Boolean)")
    assert _compile(values_model, "Test.Values/Thing", "flag = TRUE") == (
        Condition(("attributes", "Flag"), Operator.EQUALS, True),
    )


def test_bad_values_and_several_errors_are_reported_together(demo_model: CkModel) -> None:
    assert _errors(
        demo_model, METER, "voltage > abc", "state = Broken", "installedAt > 2024-01-01"
    ) == [
        f"attribute 'voltage' of {METER} expects a number, got 'abc'",
        f"attribute 'state' of {METER} expects one of Unknown, Active, Faulty, Retired (or their "
        "keys 0, 1, 2, 3), got 'Broken'",
        f"attribute 'installedAt' of {METER} expects a date-time with a time zone, got "
        "'2024-01-01' without one; add 'Z' (UTC) or an offset such as '+02:00'",
    ]


def test_values_across_associations_name_the_other_end(demo_model: CkModel) -> None:
    assert _errors(demo_model, METER, "parent->floorCount > many") == [
        "attribute 'parent->floorCount' of Demo.Energy/Building expects a whole number, got 'many'"
    ]


def test_field_filters_from_graphql_json(demo_model: CkModel) -> None:
    filters = [
        FieldFilter("voltage", Operator.BETWEEN, [220, 240]),
        FieldFilter("state", "NOT_EQUALS", "Retired"),  # type: ignore[arg-type]
        FieldFilter("serialNumber", ">=", "EM"),  # type: ignore[arg-type]
    ]
    assert compile_filters(demo_model, METER, filters) == (
        Condition(("attributes", "Voltage"), Operator.BETWEEN, [220.0, 240.0]),
        Condition(("attributes", "State"), Operator.NOT_EQUALS, 3),
        Condition(("attributes", "SerialNumber"), Operator.GREATER_EQUAL_THAN, "EM"),
    )


def test_an_unknown_type_is_not_found(demo_model: CkModel) -> None:
    from workbench.errors import NotFound

    with pytest.raises(NotFound):
        compile_filters(demo_model, "Demo.Energy/Nope", [])


# --- sort -------------------------------------------------------------------------------------


def test_compile_sort(demo_model: CkModel) -> None:
    keys = [parse_cli_sort(s) for s in ("-serialNumber", "phaseL1.voltage", "rtCreationDateTime")]
    assert compile_sort(demo_model, METER, [*keys, ("state", True)]) == (
        SortKey(("attributes", "SerialNumber"), descending=True),
        SortKey(("attributes", "PhaseL1", "Voltage")),
        SortKey(("rtCreationDateTime",)),
        SortKey(("attributes", "State"), descending=True),
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tags", f"cannot sort by 'tags' of {METER}: it is a StringArray"),
        ("phaseL1", f"cannot sort by 'phaseL1' of {METER}: it is a Record"),
        ("phases.voltage", "cannot sort by 'phases.voltage': it goes through a RecordArray"),
        ("parent->name", "cannot sort by 'parent->name': sorting across associations"),
        ("colour", f"unknown attribute 'colour' in path 'colour' for {METER}"),
    ],
)
def test_compile_sort_rejects(demo_model: CkModel, path: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        compile_sort(demo_model, METER, [(path, False)])
    (detail,) = caught.value.details
    assert detail.message.startswith(message)
    assert detail.location == "sort[0]"


# --- search -----------------------------------------------------------------------------------


def test_compile_search(demo_model: CkModel) -> None:
    assert compile_search(demo_model, METER, "hall", ["name", "description"]) == TextSearch(
        "hall", (("attributes", "Name"), ("attributes", "Description"))
    )
    assert compile_search(demo_model, METER, "EM", []) == TextSearch(
        "EM",
        (("attributes", "Name"), ("attributes", "Description"), ("attributes", "SerialNumber")),
    )
    assert compile_search(demo_model, METER, "x", ["rtWellKnownName"]).paths == (
        ("rtWellKnownName",),
    )


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["voltage"], "cannot search in 'voltage' of Demo.Energy/EnergyMeter: it is a Double"),
        (["parent->name"], "cannot search in 'parent->name': text search covers attributes"),
        (["colour"], "unknown attribute 'colour'"),
    ],
)
def test_compile_search_rejects(demo_model: CkModel, paths: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        compile_search(demo_model, METER, "x", paths)
    assert caught.value.details[0].message.startswith(message)


def test_compile_search_needs_a_term(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError, match="search term '  ' is empty"):
        compile_search(demo_model, METER, "  ", [])
