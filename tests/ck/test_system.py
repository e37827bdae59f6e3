from __future__ import annotations

from workbench.ck import (
    Multiplicity,
    ValueType,
    Version,
    VersionRange,
    resolve_model,
    system_library,
)


def test_system_library_is_version_2() -> None:
    system = system_library()
    assert system.model_id == "System-2.0.0"
    assert VersionRange.parse("[2.0,3.0)").contains(system.version)
    assert system.version == Version(2)


def test_system_elements() -> None:
    system = system_library()
    entity = system.types["System/Entity"]
    assert entity.is_abstract
    assert entity.derived_from is None
    assert [(a.role_id, a.target_type_id) for a in entity.own_associations] == [
        ("System/Related", "System/Entity")
    ]
    assert {i: a.value_type for i, a in system.attributes.items()} == {
        "System/Name": ValueType.STRING,
        "System/DisplayName": ValueType.STRING,
        "System/Description": ValueType.STRING,
        "System/Enabled": ValueType.BOOLEAN,
        # persisted queries (System/SimpleRtQuery, System/StreamDataQuery)
        "System/Query.CkTypeId": ValueType.STRING,
        "System/Query.Columns": ValueType.STRING_ARRAY,
        "System/Query.FieldFilter": ValueType.STRING,
        "System/Query.Sorting": ValueType.STRING,
        "System/Query.NavigationFilterMode": ValueType.STRING,
        "System/Query.From": ValueType.DATETIME,
        "System/Query.To": ValueType.DATETIME,
        "System/Query.Range": ValueType.STRING,
        "System/Query.Aggregation": ValueType.STRING,
        "System/Query.Interval": ValueType.STRING,
        "System/Query.Limit": ValueType.INT,
    }
    parent_child = system.roles["System/ParentChild"]
    assert (parent_child.outbound_name, parent_child.outbound_multiplicity) == (
        "Parent",
        Multiplicity.ONE,
    )
    assert (parent_child.inbound_name, parent_child.inbound_multiplicity) == (
        "Children",
        Multiplicity.N,
    )
    related = system.roles["System/Related"]
    assert (related.outbound_name, related.inbound_name) == ("RelatesTo", "RelatesFrom")
    assert related.outbound_multiplicity is related.inbound_multiplicity is Multiplicity.N


def test_system_library_copies_do_not_share_state() -> None:
    first = system_library()
    first.types.clear()
    assert "System/Entity" in system_library().types
    assert system_library() == system_library()


def test_system_resolves_alone() -> None:
    model = resolve_model([])
    # the built-in libraries come with System, in every model
    assert list(model.libraries) == ["System", "System.Bot", "System.Communication"]
    assert model.end("System/Entity", "RelatesTo").target_type_id == "System/Entity"
    assert model.end("System/Entity", "relatesFrom").direction == "inbound"
