"""Attribute values: validation, storage forms, export forms and filter-value coercion."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from workbench.ck.model import CkModel
from workbench.errors import ErrorCollector, ValidationError
from workbench.query.model import Operator
from workbench.runtime.values import (
    applicable_operators,
    coerce_value,
    externalize_attributes,
    format_timespan,
    normalize_attributes,
    parse_timespan,
    split_list_value,
)

THING = "Test.Values/Thing"
METER = "Demo.Energy/EnergyMeter"
#: what normalisation adds to every Thing created without those attributes (defaults)
THING_DEFAULTS = {"Count": 7, "Mode": 1, "Channels": ["a", "b"]}


def _thing(model: CkModel, **values: Any) -> dict[str, Any]:
    return normalize_attributes(model, THING, {"name": "t", **values})


def _stored(model: CkModel, **values: Any) -> Any:
    """The stored value of the single attribute given."""
    ((name, raw),) = values.items()
    out = _thing(model, **{name: raw})
    key = next(k for k in out if k.lower() == name.lower())
    return out[key]


def _messages(error: ValidationError) -> list[str]:
    return [d.message for d in error.details]


def _reject(model: CkModel, type_id: str = THING, **values: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(model, type_id, {"name": "t", **values})
    return _messages(caught.value)


# --- scalars ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "stored"),
    [
        ("text", "hello", "hello"),
        ("text", "", ""),
        ("flag", True, True),
        ("flag", False, False),
        ("count", 42, 42),
        ("count", -(2**31), -(2**31)),
        ("count", 2**31 - 1, 2**31 - 1),
        ("count", 3.0, 3),
        ("big", 2**63 - 1, 2**63 - 1),
        ("big", -(2**63), -(2**63)),
        ("ratio", 1.5, 1.5),
        ("ratio", 2, 2.0),
        ("blobRef", "files/abc", "files/abc"),
        ("labels", ["a", "b"], ["a", "b"]),
        ("labels", [], []),
        ("codes", [1, -2, 3], [1, -2, 3]),
    ],
)
def test_scalar_values_are_accepted(
    values_model: CkModel, name: str, raw: Any, stored: Any
) -> None:
    result = _stored(values_model, **{name: raw})
    assert result == stored
    assert type(result) is type(stored)


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("text", 42, "expects a string, got 42"),
        ("flag", "true", "expects true or false, got 'true'"),
        ("flag", 1, "expects true or false, got 1"),
        ("count", True, "expects a whole number, got True"),
        ("count", 1.5, "expects a whole number, got 1.5"),
        ("count", "12", "expects a whole number, got '12'; give the number without quotes"),
        (
            "count",
            2**31,
            "expects a whole number between -2147483648 and 2147483647 (Int), got 2147483648",
        ),
        (
            "big",
            2**63,
            "expects a whole number between -9223372036854775808 and 9223372036854775807 "
            "(Int64), got 9223372036854775808",
        ),
        ("ratio", "abc", "expects a number, got 'abc'"),
        ("ratio", "1.5", "expects a number, got '1.5'; give the number without quotes"),
        ("ratio", False, "expects a number, got False"),
        ("ratio", float("nan"), "expects a finite number, got nan"),
        ("ratio", float("inf"), "expects a finite number, got inf"),
        ("blobRef", "  ", "expects a non-empty binary reference string, got '  '"),
        ("labels", "a", "expects a list of strings, got 'a'"),
        ("labels", ["a", 2], "expects a list of strings; item 1 expects a string, got 2"),
        (
            "codes",
            [1, "x"],
            "expects a list of whole numbers; item 1 expects a whole number, got 'x'",
        ),
        (
            "codes",
            [2**40],
            "expects a list of whole numbers; item 0 expects a whole number between "
            "-2147483648 and 2147483647 (Int), got 1099511627776",
        ),
    ],
)
def test_scalar_values_are_rejected_with_the_reason(
    values_model: CkModel, name: str, raw: Any, reason: str
) -> None:
    assert _reject(values_model, **{name: raw}) == [f"attribute '{name}' of {THING} {reason}"]


def test_the_message_names_the_attribute_the_type_and_the_value(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(
            demo_model,
            METER,
            {"name": "m", "serialNumber": "S", "state": "Active", "voltage": "abc"},
            location="entities[3]",
        )
    (detail,) = caught.value.details
    assert detail.message == f"attribute 'voltage' of {METER} expects a number, got 'abc'"
    assert detail.location == "entities[3]"
    assert detail.element == "voltage"
    assert caught.value.message == f"entities[3]: 1 invalid attribute value for {METER}"
    assert isinstance(caught.value, ValueError)


# --- date-times and durations -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["at", "atOffset"])
@pytest.mark.parametrize(
    "raw",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T14:00:00+02:00",
        "2024-05-01 12:00:00+00:00",
        datetime(2024, 5, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_datetimes_are_stored_as_aware_utc(values_model: CkModel, name: str, raw: Any) -> None:
    stored = _stored(values_model, **{name: raw})
    assert stored == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert stored.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            "2024-05-01T12:00:00",
            "expects a date-time with a time zone, got '2024-05-01T12:00:00' without one; "
            "add 'Z' (UTC) or an offset such as '+02:00'",
        ),
        (
            datetime(2024, 5, 1, 12),
            "expects a date-time with a time zone, got datetime 2024-05-01 12:00:00 without "
            "one; add 'Z' (UTC) or an offset such as '+02:00'",
        ),
        (
            date(2024, 5, 1),
            "expects a date-time with a time zone, got the date 2024-05-01; write e.g. "
            "'2024-05-01T00:00:00Z'",
        ),
        (
            "yesterday",
            "expects an ISO 8601 date-time with a time zone such as '2024-05-01T12:00:00Z', "
            "got 'yesterday'",
        ),
        (1714564800, "expects an ISO 8601 date-time with a time zone, got 1714564800"),
    ],
)
def test_datetimes_without_a_zone_are_rejected(
    values_model: CkModel, raw: Any, reason: str
) -> None:
    assert _reject(values_model, at=raw) == [f"attribute 'at' of {THING} {reason}"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT15M", 900.0),
        ("P1DT2H", 93600.0),
        ("PT0.5S", 0.5),
        ("PT1,5S", 1.5),
        ("P2W", 1209600.0),
        ("-PT1H", -3600.0),
        ("pt1h30m", 5400.0),
        ("PT0S", 0.0),
        ("00:15:00", 900.0),
        ("1.02:00:00", 93600.0),
        ("01:30", 5400.0),
        ("00:00:01.25", 1.25),
        ("-00:00:30", -30.0),
    ],
)
def test_timespans_parse_iso_and_dotnet_forms(text: str, seconds: float) -> None:
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["P1Y", "P2M", "PT", "P", "15m", "25:00:00", "00:60:00", ""])
def test_bad_timespans_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|is not a duration"):
        parse_timespan(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (900.0, "PT15M"),
        (93600.0, "P1DT2H"),
        (86400.0, "P1D"),
        (0.0, "PT0S"),
        (0.5, "PT0.5S"),
        (-3600.0, "-PT1H"),
        (90061.25, "P1DT1H1M1.25S"),
        (1e-7, "PT0.0000001S"),
    ],
)
def test_timespans_format_as_iso_durations_and_parse_back(seconds: float, text: str) -> None:
    assert format_timespan(seconds) == text
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("seconds", [0.1, 1 / 3, 123456.789, -0.2, 1e9 + 0.3])
def test_timespan_round_trip_is_exact(seconds: float) -> None:
    assert parse_timespan(format_timespan(seconds)) == seconds


def test_timespans_are_stored_as_seconds_that_sort_like_durations(values_model: CkModel) -> None:
    inputs = ["P1D", "PT15M", timedelta(hours=2), "-PT1S", "00:00:30"]
    stored = [_stored(values_model, duration=raw) for raw in inputs]
    assert stored == [86400.0, 900.0, 7200.0, -1.0, 30.0]
    assert sorted(stored) == [-1.0, 30.0, 900.0, 7200.0, 86400.0]


def test_a_bad_timespan_says_which_forms_fit(values_model: CkModel) -> None:
    assert _reject(values_model, duration=900) == [
        f"attribute 'duration' of {THING} expects a duration such as 'PT15M', 'P1DT2H' or "
        "'1.02:00:00', got 900"
    ]
    (message,) = _reject(values_model, duration="P1M")
    assert "years or months, which have no fixed length" in message


# --- enums ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "key"), [("Medium", 1), ("high", 2), ("LOW", 0), (2, 2), ("1", 1)])
def test_enums_by_name_or_key_are_stored_as_the_key(
    values_model: CkModel, raw: Any, key: int
) -> None:
    assert _stored(values_model, level=raw) == key


@pytest.mark.parametrize("raw", ["Extreme", 7, True, 1.0, None])
def test_unknown_enum_values_list_the_allowed_names(values_model: CkModel, raw: Any) -> None:
    if raw is None:  # None means absent for an optional attribute, not a bad value
        assert "Level" not in _thing(values_model, level=raw)
        return
    assert _reject(values_model, level=raw) == [
        f"attribute 'level' of {THING} expects one of Low, Medium, High (or their keys 0, 1, 2), "
        f"got {raw!r}"
    ]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (["Read", "Write"], 3),
        ("Read|Execute", 5),
        ("read | write | execute", 7),
        ([1, "Write"], 3),
        (6, 6),
        ("None", 0),
        ([], 0),
    ],
)
def test_flags_enums_combine_names_and_keys(values_model: CkModel, raw: Any, key: int) -> None:
    assert _stored(values_model, access=raw) == key


@pytest.mark.parametrize("raw", [8, -1, ["Read", "Delete"], "Read|", {"Read": True}])
def test_bad_flags_are_rejected(values_model: CkModel, raw: Any) -> None:
    assert _reject(values_model, access=raw) == [
        f"attribute 'access' of {THING} expects a combination of None, Read, Write, Execute "
        f"(or their keys 0, 1, 2, 4) as a list or 'A|B', got {raw!r}"
    ]


# --- records ----------------------------------------------------------------------------------


def test_records_as_plain_mappings_by_name(values_model: CkModel) -> None:
    assert _stored(values_model, limits={"low": 1, "High": 2.5}) == {"Low": 1.0, "High": 2.5}
    assert _stored(values_model, limits={"low": 1}) == {"Low": 1.0}


def test_records_in_runtime_file_form(values_model: CkModel) -> None:
    raw = {
        "ckRecordId": "Test.Values/Limits",
        "attributes": [{"id": "Test.Values/Low", "value": 1}, {"id": "Test.Values/High"}],
    }
    assert _stored(values_model, limits=raw) == {"Low": 1.0}


def test_a_derived_record_keeps_its_record_id(values_model: CkModel) -> None:
    raw = {
        "ckRecordId": "Test.Values/UnitLimits",
        "attributes": [
            {"id": "Test.Values/Low", "value": 1},
            {"id": "Test.Values/Unit", "value": "V"},
        ],
    }
    expected = {"Low": 1.0, "Unit": "V", "ckRecordId": "Test.Values/UnitLimits"}
    assert _stored(values_model, limits=raw) == expected
    plain = {"ckRecordId": "Test.Values/UnitLimits", "low": 1, "unit": "V"}
    assert _stored(values_model, limits=plain) == expected


@pytest.mark.parametrize("record_id", ["Test.Values/Other", "Test.Values/Nope", 5])
def test_a_record_id_must_be_the_declared_record_or_derived_from_it(
    values_model: CkModel, record_id: Any
) -> None:
    assert _reject(values_model, limits={"ckRecordId": record_id, "low": 1}) == [
        f"attribute 'limits' of {THING} expects a record Test.Values/Limits or one derived "
        f"from it, got ckRecordId {record_id!r}"
    ]


def test_record_fields_are_validated_with_their_own_paths(values_model: CkModel) -> None:
    messages = _reject(values_model, limits={"high": "x", "width": 3})
    assert messages == [
        f"attribute 'limits.high' of {THING} expects a number, got 'x'",
        "record Test.Values/Limits (at 'limits') has no attribute 'width'; its attributes are: "
        "high, low",
        f"attribute 'limits.low' of {THING} is required but missing",
    ]


def test_record_errors_carry_the_nested_path(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(
            demo_model,
            METER,
            {"name": "m", "serialNumber": "S", "state": 1, "phaseL1": {"voltage": "abc"}},
            location="6560a1b2c3d4e5f607182932",
        )
    (detail,) = caught.value.details
    assert detail.element == "phaseL1.voltage"
    assert detail.location == "6560a1b2c3d4e5f607182932"
    assert detail.message == f"attribute 'phaseL1.voltage' of {METER} expects a number, got 'abc'"


def test_record_arrays(values_model: CkModel) -> None:
    raw = [{"low": 1}, {"ckRecordId": "Test.Values/UnitLimits", "low": 2, "unit": "A"}]
    assert _stored(values_model, history=raw) == [
        {"Low": 1.0},
        {"Low": 2.0, "Unit": "A", "ckRecordId": "Test.Values/UnitLimits"},
    ]
    assert _reject(values_model, history=[{"low": 1}, {"low": "x"}, 3]) == [
        f"attribute 'history[1].low' of {THING} expects a number, got 'x'",
        f"attribute 'history[2]' of {THING} expects a record Test.Values/Limits (a mapping), got 3",
    ]
    assert _reject(values_model, history={"low": 1}) == [
        f"attribute 'history' of {THING} expects a list of records, got {{'low': 1}}"
    ]


def test_a_record_must_be_a_mapping(values_model: CkModel) -> None:
    assert _reject(values_model, limits=[1, 2]) == [
        f"attribute 'limits' of {THING} expects a record Test.Values/Limits (a mapping), got [1, 2]"
    ]


# --- points and binary ------------------------------------------------------------------------


def test_geospatial_points(values_model: CkModel) -> None:
    point = {"type": "Point", "coordinates": [14, 48.3]}
    assert _stored(values_model, location=point) == {"type": "Point", "coordinates": [14.0, 48.3]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"type": "Point", "coordinates": [14, 95]}, "expects a latitude between -90 and 90"),
        ({"type": "Point", "coordinates": [200, 45]}, "expects a longitude between -180 and 180"),
        ({"type": "LineString", "coordinates": [1, 2]}, "expects a GeoJSON point"),
        ({"type": "Point", "coordinates": [1]}, "expects a GeoJSON point"),
        ({"type": "Point", "coordinates": ["1", "2"]}, "expects a GeoJSON point"),
        ([14, 48], "expects a GeoJSON point"),
    ],
)
def test_bad_points_are_rejected(values_model: CkModel, raw: Any, reason: str) -> None:
    (message,) = _reject(values_model, location=raw)
    assert message.startswith(f"attribute 'location' of {THING} {reason}")


def test_binary_values_are_canonical_base64(values_model: CkModel) -> None:
    encoded = base64.b64encode(b"\x00\x01hello").decode()
    assert _stored(values_model, blob=encoded) == encoded
    assert _stored(values_model, blob=b"\x00\x01hello") == encoded
    assert _stored(values_model, blob=encoded[:8] + "\n" + encoded[8:]) == encoded
    assert _reject(values_model, blob="not base64!") == [
        f"attribute 'blob' of {THING} expects base64-encoded data, got 'not base64!'"
    ]


# --- names, ids, required, defaults -----------------------------------------------------------


@pytest.mark.parametrize("key", ["SerialNumber", "serialNumber", "SERIALNUMBER"])
def test_attribute_names_match_declared_graphql_or_any_case(demo_model: CkModel, key: str) -> None:
    out = normalize_attributes(demo_model, METER, {"name": "m", key: "S", "state": 0})
    assert out == {"Name": "m", "SerialNumber": "S", "State": 0}


def test_unknown_attributes_list_the_types_attributes(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(
            demo_model, METER, {"name": "m", "serialNumber": "S", "state": 0, "x": 1}
        )
    assert _messages(caught.value) == [
        f"{METER} has no attribute 'x'; its attributes are: activePower, current, description, "
        "energyImported, installedAt, name, phaseL1, phases, serialNumber, state, tags, voltage"
    ]
    assert caught.value.details[0].element == "x"


def test_attributes_by_full_id_as_mapping_or_runtime_list(demo_model: CkModel) -> None:
    expected = {"Name": "m", "SerialNumber": "S", "State": 1}
    mapping = {"System/Name": "m", "Demo.Energy/SerialNumber": "S", "Demo.Energy/MeterState": 1}
    assert normalize_attributes(demo_model, METER, mapping, keyed_by="id") == expected
    listed = [{"id": key, "value": value} for key, value in mapping.items()]
    assert normalize_attributes(demo_model, METER, listed, keyed_by="id") == expected


def test_unknown_ids_list_the_types_attribute_ids(values_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(
            values_model, "Test.Values/Box", {"System/Name": "b", "Text": 1}, keyed_by="id"
        )
    assert _messages(caught.value) == [
        "Test.Values/Box has no attribute with id 'Text'; its attribute ids are: System/Name, "
        "Test.Values/Count, Test.Values/Unit"
    ]


def test_bad_runtime_entries_and_duplicates_are_reported(demo_model: CkModel) -> None:
    entries: list[dict[str, Any]] = [
        {"id": "System/Name", "value": "m"},
        {"value": "no id"},
        {"id": "Demo.Energy/SerialNumber", "value": "S", "extra": 1},
    ]
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(demo_model, METER, entries, keyed_by="id", partial=True)
    assert [m.split(" must be ")[0] for m in _messages(caught.value)] == [
        f"attribute entry 1 of {METER}",
        f"attribute entry 2 of {METER}",
    ]
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(demo_model, METER, {"name": "a", "Name": "b"}, partial=True)
    assert _messages(caught.value) == [
        f"attribute 'name' of {METER} is given twice (as 'name' and 'Name')"
    ]
    with pytest.raises(ValidationError, match="must be a mapping"):
        normalize_attributes(demo_model, METER, [{"id": "System/Name", "value": "m"}])


def test_required_attributes_missing_or_null(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(demo_model, METER, {"name": None})
    assert _messages(caught.value) == [
        f"attribute 'name' of {METER} is required and cannot be null",
        f"attribute 'serialNumber' of {METER} is required but missing",
        f"attribute 'state' of {METER} is required but missing",
    ]


def test_null_for_an_optional_attribute_means_absent(demo_model: CkModel) -> None:
    out = normalize_attributes(
        demo_model, METER, {"name": "m", "serialNumber": "S", "state": 0, "voltage": None}
    )
    assert "Voltage" not in out


def test_partial_updates_skip_required_and_defaults(values_model: CkModel) -> None:
    assert normalize_attributes(values_model, THING, {"ratio": 2}, partial=True) == {"Ratio": 2.0}
    assert normalize_attributes(values_model, THING, {"text": None}, partial=True) == {}
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(values_model, THING, {"name": None}, partial=True)
    assert _messages(caught.value) == [
        f"attribute 'name' of {THING} is required and cannot be null"
    ]


def test_defaults_fill_missing_attributes_on_create(values_model: CkModel) -> None:
    # Count: a default on the type's entry; Mode: an enum default by name on the attribute;
    # Channels: an array default (the whole list)
    assert _thing(values_model) == {"Name": "t", **THING_DEFAULTS}
    assert _thing(values_model, count=1, mode="High", channels=[])["Count"] == 1
    assert _thing(values_model, mode="High")["Mode"] == 2
    assert _thing(values_model, channels=[])["Channels"] == []


def test_all_problems_come_in_one_error(demo_model: CkModel) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_attributes(
            demo_model,
            METER,
            {"serialNumber": 5, "state": "Broken", "voltage": "x", "bogus": 1},
            location="entities[3]",
        )
    assert len(caught.value.details) == 5
    assert {d.location for d in caught.value.details} == {"entities[3]"}
    assert {d.element for d in caught.value.details} == {
        "serialNumber",
        "state",
        "voltage",
        "bogus",
        "name",
    }
    assert caught.value.message == f"entities[3]: 5 invalid attribute values for {METER}"


def test_an_error_collector_gathers_problems_without_raising(demo_model: CkModel) -> None:
    errors = ErrorCollector()
    out = normalize_attributes(
        demo_model, METER, {"name": "m", "serialNumber": 1, "state": 1}, errors=errors
    )
    assert out == {"Name": "m", "State": 1}
    assert [d.element for d in errors.details] == ["serialNumber"]


# --- export and round trips -------------------------------------------------------------------


def test_sample_entities_round_trip_through_both_export_forms(
    demo_model: CkModel, demo_entities: list[dict[str, Any]]
) -> None:
    for index, entity in enumerate(demo_entities):
        type_id = entity["ckTypeId"]
        stored = normalize_attributes(
            demo_model, type_id, entity["attributes"], keyed_by="id", location=f"entities[{index}]"
        )
        by_id = externalize_attributes(demo_model, type_id, stored, keyed_by="id")
        by_name = externalize_attributes(demo_model, type_id, stored, keyed_by="name")
        assert normalize_attributes(demo_model, type_id, by_id, keyed_by="id") == stored
        assert normalize_attributes(demo_model, type_id, by_name) == stored
        assert {e["id"] for e in by_id} == {e["id"] for e in entity["attributes"]}


def test_sample_meter_in_storage_and_export_forms(
    demo_model: CkModel, demo_entities: list[dict[str, Any]]
) -> None:
    meter = demo_entities[2]
    stored = normalize_attributes(demo_model, METER, meter["attributes"], keyed_by="id")
    assert stored == {
        "Name": "Meter-001",
        "SerialNumber": "EM-0001",
        "State": 1,
        "Voltage": 231.5,
        "Tags": ["main", "hall-a"],
        "PhaseL1": {"Voltage": 230.9, "Current": 12.4},
    }
    assert externalize_attributes(demo_model, METER, stored, keyed_by="name") == {
        "name": "Meter-001",
        "serialNumber": "EM-0001",
        "state": "Active",
        "tags": ["main", "hall-a"],
        "voltage": 231.5,
        "phaseL1": {"voltage": 230.9, "current": 12.4},
    }
    by_id = externalize_attributes(demo_model, METER, stored, keyed_by="id")
    assert {"id": "Demo.Energy/MeterState", "value": "Active"} in by_id
    assert {
        "id": "Demo.Energy/PhaseL1",
        "value": {
            "ckRecordId": "Demo.Energy/PhaseInfo",
            "attributes": [
                {"id": "Demo.Energy/Voltage", "value": 230.9},
                {"id": "Demo.Energy/Current", "value": 12.4},
            ],
        },
    } in by_id


def _full_thing(model: CkModel) -> dict[str, Any]:
    return _thing(
        model,
        text="x",
        flag=True,
        big=2**40,
        ratio=0.1,
        at="2024-05-01T14:30:00.250+02:00",
        atOffset=datetime(2024, 1, 1, tzinfo=UTC),
        duration="P1DT2H0.5S",
        level="High",
        access="Read|Write",
        limits={"ckRecordId": "Test.Values/UnitLimits", "low": 1, "unit": "V"},
        history=[{"low": 1, "high": 2}],
        labels=["a"],
        codes=[1, 2],
        location={"type": "Point", "coordinates": [1.5, 2.5]},
        blob=base64.b64encode(b"data").decode(),
        blobRef="ref-1",
    )


def test_every_value_type_round_trips(values_model: CkModel) -> None:
    stored = _full_thing(values_model)
    by_id = externalize_attributes(values_model, THING, stored, keyed_by="id")
    by_name = externalize_attributes(values_model, THING, stored, keyed_by="name")
    assert normalize_attributes(values_model, THING, by_id, keyed_by="id") == stored
    assert normalize_attributes(values_model, THING, by_name) == stored


def test_export_forms_are_json_friendly(values_model: CkModel) -> None:
    by_name = externalize_attributes(
        values_model, THING, _full_thing(values_model), keyed_by="name"
    )
    assert by_name["at"] == "2024-05-01T12:30:00.250000Z"
    assert by_name["atOffset"] == "2024-01-01T00:00:00Z"
    assert by_name["duration"] == "P1DT2H0.5S"
    assert by_name["level"] == "High"
    assert by_name["access"] == ["Read", "Write"]
    assert by_name["mode"] == "Medium"
    assert by_name["limits"] == {"ckRecordId": "Test.Values/UnitLimits", "low": 1.0, "unit": "V"}
    assert by_name["history"] == [{"low": 1.0, "high": 2.0}]
    by_id = externalize_attributes(values_model, THING, _full_thing(values_model), keyed_by="id")
    limits = next(e["value"] for e in by_id if e["id"] == "Test.Values/Limits")
    assert limits == {
        "ckRecordId": "Test.Values/UnitLimits",
        "attributes": [
            {"id": "Test.Values/Low", "value": 1.0},
            {"id": "Test.Values/Unit", "value": "V"},
        ],
    }


@pytest.mark.parametrize(("key", "names"), [(0, ["None"]), (5, ["Read", "Execute"]), (7, None)])
def test_flags_export_as_name_lists(values_model: CkModel, key: int, names: Any) -> None:
    out = externalize_attributes(values_model, THING, {"Access": key}, keyed_by="name")
    assert out["access"] == (names or ["Read", "Write", "Execute"])


def test_export_leaves_out_attributes_not_in_the_model(values_model: CkModel) -> None:
    out = externalize_attributes(values_model, THING, {"Name": "t", "Gone": 1}, keyed_by="name")
    assert out == {"name": "t"}


# --- filter values ----------------------------------------------------------------------------


def _attr(model: CkModel, name: str) -> Any:
    return model.type(THING).attribute(name)


@pytest.mark.parametrize(
    ("name", "raw", "operator", "expected"),
    [
        ("Ratio", "230", Operator.GREATER_THAN, 230.0),
        ("Ratio", 230, Operator.EQUALS, 230.0),
        ("Count", "12", Operator.LESS_THAN, 12),
        ("Count", "1e3", Operator.EQUALS, 1000),
        ("Big", "9007199254740993", Operator.EQUALS, 9007199254740993),
        ("Flag", "TRUE", Operator.EQUALS, True),
        ("Flag", "false", Operator.NOT_EQUALS, False),
        ("Text", "Hall A", Operator.EQUALS, "Hall A"),
        ("Text", 5, Operator.EQUALS, "5"),
        ("Text", "Hall%", Operator.LIKE, "Hall%"),
        ("Text", "^H.*A$", Operator.MATCH_REG_EX, "^H.*A$"),
        (
            "At",
            "2024-05-01T14:00:00+02:00",
            Operator.GREATER_EQUAL_THAN,
            datetime(2024, 5, 1, 12, tzinfo=UTC),
        ),
        ("Duration", "PT15M", Operator.LESS_THAN, 900.0),
        ("Level", "high", Operator.EQUALS, 2),
        ("Level", "1", Operator.EQUALS, 1),
        ("Access", "Read|Write", Operator.EQUALS, 3),
        ("Level", "Low,High", Operator.IN, [0, 2]),
        ("Level", ["Low", 1], Operator.NOT_IN, [0, 1]),
        ("Ratio", "[1, 2.5]", Operator.IN, [1.0, 2.5]),
        ("Ratio", "10, 20", Operator.BETWEEN, [10.0, 20.0]),
        ("Text", "'a,b', c", Operator.IN, ["a,b", "c"]),
        ("Labels", "main", Operator.ANY_EQ, "main"),
        ("Labels", "ma%", Operator.ANY_LIKE, "ma%"),
        ("Codes", "3", Operator.ANY_EQ, 3),
        ("Limits", None, Operator.IS_NULL, None),
        ("Location", "ignored", Operator.IS_NOT_NULL, None),
    ],
)
def test_coerce_value_converts_filter_values(
    values_model: CkModel, name: str, raw: Any, operator: Operator, expected: Any
) -> None:
    result = coerce_value(values_model, _attr(values_model, name), raw, operator)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw", "operator", "reason"),
    [
        ("Ratio", "abc", Operator.EQUALS, "expects a number, got 'abc'"),
        ("Count", "1.5", Operator.EQUALS, "expects a whole number, got '1.5'"),
        ("Flag", "yes", Operator.EQUALS, "expects true or false, got 'yes'"),
        (
            "At",
            "2024-05-01",
            Operator.GREATER_THAN,
            "expects a date-time with a time zone, got '2024-05-01' without one; add 'Z' (UTC) "
            "or an offset such as '+02:00'",
        ),
        ("Level", "Extreme", Operator.EQUALS, "expects one of Low, Medium, High"),
        ("Ratio", "1,2,3", Operator.BETWEEN, "expects two values for BETWEEN"),
        ("Ratio", "", Operator.IN, "expects at least one value for IN"),
        (
            "Ratio",
            "[1,",
            Operator.IN,
            "expects a list of values for IN: '[1,' is not a valid JSON list",
        ),
        ("Text", "(", Operator.MATCH_REG_EX, "expects a valid regular expression"),
        ("Text", 5, Operator.LIKE, "expects a text pattern for LIKE, got 5"),
        ("Ratio", None, Operator.EQUALS, "needs a comparison value for EQUALS"),
        (
            "Ratio",
            "1%",
            Operator.LIKE,
            "is a Double and cannot be filtered with LIKE; operators that fit: EQUALS, "
            "NOT_EQUALS, LESS_THAN, LESS_EQUAL_THAN, GREATER_THAN, GREATER_EQUAL_THAN, IN, "
            "NOT_IN, BETWEEN, IS_NULL, IS_NOT_NULL",
        ),
    ],
)
def test_coerce_value_rejects_with_the_reason(
    values_model: CkModel, name: str, raw: Any, operator: Operator, reason: str
) -> None:
    attribute = _attr(values_model, name)
    with pytest.raises(ValidationError) as caught:
        coerce_value(values_model, attribute, raw, operator)
    (message,) = _messages(caught.value)
    prefix = f"attribute '{name[0].lower() + name[1:]}' of {THING} "
    assert message.startswith(prefix + reason)


def test_coerce_value_names_the_given_path_and_owner(demo_model: CkModel) -> None:
    record = demo_model.record("Demo.Energy/PhaseInfo")
    with pytest.raises(ValidationError) as caught:
        coerce_value(
            demo_model,
            record.attributes["Voltage"],
            "abc",
            Operator.GREATER_THAN,
            path="phaseL1.voltage",
            owner=METER,
        )
    assert _messages(caught.value) == [
        f"attribute 'phaseL1.voltage' of {METER} expects a number, got 'abc'"
    ]


@pytest.mark.parametrize(
    ("raw", "items"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ", ["a", "b"]),
        ("'Hall A', \"Hall, B\"", ["Hall A", "Hall, B"]),
        ("' padded '", [" padded "]),
        ('[1, "x", true]', [1, "x", True]),
        ("single", ["single"]),
        ("", []),
        (["x", 1], ["x", 1]),
        (5, [5]),
    ],
)
def test_split_list_value(raw: Any, items: list[Any]) -> None:
    assert split_list_value(raw) == items


@pytest.mark.parametrize("raw", ["'open", "[1, 2", '{"a": 1}'])
def test_split_list_value_rejects_broken_lists(raw: str) -> None:
    with pytest.raises(ValueError, match=r"unclosed quote|JSON"):
        split_list_value(raw if not raw.startswith("{") else "[" + raw)


def test_operator_table() -> None:
    from workbench.ck.model import ValueType

    assert Operator.LIKE in applicable_operators(ValueType.STRING)
    assert Operator.GREATER_THAN not in applicable_operators(ValueType.BOOLEAN)
    assert Operator.GREATER_THAN not in applicable_operators(ValueType.ENUM)
    assert applicable_operators(ValueType.RECORD) == [Operator.IS_NULL, Operator.IS_NOT_NULL]
    assert Operator.ANY_EQ in applicable_operators(ValueType.INT_ARRAY)
    assert Operator.ANY_LIKE not in applicable_operators(ValueType.INT_ARRAY)
    assert Operator.ANY_EQ not in applicable_operators(ValueType.STRING)
