from __future__ import annotations

import pytest

from workbench.ck import (
    SYSTEM_FIELD_NAMES,
    graphql_association_field_name,
    graphql_enum_type_name,
    graphql_enum_value_name,
    graphql_field_name,
    graphql_input_type_name,
    graphql_list_query_name,
    graphql_mutation_field_name,
    graphql_record_input_type_name,
    graphql_record_type_name,
    graphql_stream_query_name,
    graphql_type_name,
    is_valid_graphql_name,
)


@pytest.mark.parametrize(
    ("element_id", "type_name", "list_query", "stream_query", "mutation"),
    [
        (
            "Industry.Energy/EnergyMeter",
            "IndustryEnergyEnergyMeter",
            "rtIndustryEnergyEnergyMeter",
            "tsIndustryEnergyEnergyMeter",
            "industryEnergyEnergyMeters",
        ),
        (
            "Demo.Energy/Site",
            "DemoEnergySite",
            "rtDemoEnergySite",
            "tsDemoEnergySite",
            "demoEnergySites",
        ),
        ("System/Entity", "SystemEntity", "rtSystemEntity", "tsSystemEntity", "systemEntitys"),
        ("my-lib.v2/pump", "MyLibV2Pump", "rtMyLibV2Pump", "tsMyLibV2Pump", "myLibV2Pumps"),
    ],
)
def test_type_names(
    element_id: str, type_name: str, list_query: str, stream_query: str, mutation: str
) -> None:
    assert graphql_type_name(element_id) == type_name
    assert graphql_input_type_name(element_id) == f"{type_name}Input"
    assert graphql_list_query_name(element_id) == list_query
    assert graphql_stream_query_name(element_id) == stream_query
    assert graphql_mutation_field_name(element_id) == mutation


def test_clashing_ids_give_the_same_name() -> None:
    assert graphql_type_name("A.B/C") == graphql_type_name("AB/C") == "ABC"


def test_enum_and_record_names() -> None:
    assert graphql_enum_type_name("Demo.Energy/MeterState") == "DemoEnergyMeterState"
    assert graphql_record_type_name("Demo.Energy/PhaseInfo") == "DemoEnergyPhaseInfo"
    assert graphql_record_input_type_name("Demo.Energy/PhaseInfo") == "DemoEnergyPhaseInfoInput"


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("MeteringPointNumber", "meteringPointNumber"),
        ("Voltage", "voltage"),
        ("rtId", "rtId"),
        ("PhaseL1", "phaseL1"),
        ("X", "x"),
    ],
)
def test_field_names(name: str, field: str) -> None:
    assert graphql_field_name(name) == field


def test_association_field_names() -> None:
    assert graphql_association_field_name("Parent") == "parent"
    assert graphql_association_field_name("Children") == "children"
    assert graphql_association_field_name("RelatesTo") == "relatesTo"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Active", "ACTIVE"),
        ("InService", "IN_SERVICE"),
        ("OutOfService", "OUT_OF_SERVICE"),
        ("HTTPError", "HTTP_ERROR"),
        ("Phase1", "PHASE1"),
        ("already_snake", "ALREADY_SNAKE"),
        ("ALREADY_UPPER", "ALREADY_UPPER"),
        ("with space", "WITH_SPACE"),
        ("Unknown", "UNKNOWN"),
    ],
)
def test_enum_value_names(name: str, value: str) -> None:
    assert graphql_enum_value_name(name) == value


def test_valid_names_and_system_fields() -> None:
    assert is_valid_graphql_name("DemoEnergySite")
    assert not is_valid_graphql_name("1Phase")
    assert not is_valid_graphql_name("__typename")
    assert not is_valid_graphql_name("max value")
    assert {"rtId", "ckTypeId", "rtWellKnownName", "rtVersion"} <= SYSTEM_FIELD_NAMES
