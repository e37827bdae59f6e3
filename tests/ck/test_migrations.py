from __future__ import annotations

from typing import Any

import pytest

from tests.ck.conftest import BuildLibrary
from workbench.ck import (
    CkLibrary,
    Migration,
    MigrationStep,
    Version,
    apply_steps,
    dump_library,
    load_library_from_documents,
    migrations_between,
)
from workbench.ck.loader import parse_yaml
from workbench.errors import ModelError, ValidationError


def step(action: str, **params: Any) -> MigrationStep:
    return MigrationStep(action, params)


def library_with_migrations(**files: str) -> CkLibrary:
    documents: list[tuple[str, Any]] = [("ckModel.yaml", {"modelId": "Lib-2.0.0"})]
    documents += [
        (f"migrations/{name.replace('_', '.')}.yaml", parse_yaml(text))
        for name, text in files.items()
    ]
    return load_library_from_documents(documents)


def test_migrations_folder_is_parsed(basic: CkLibrary) -> None:
    first, second = basic.migrations
    assert (first.from_version, first.to_version, first.breaking) == (Version(1), Version(2), True)
    assert first.script_path == "1.0.0-to-2.0.0.yaml"
    assert [s.action for s in first.steps] == ["ChangeCkType", "RenameAttribute", "MapValue"]
    assert first.steps[0].params == {"ckTypeId": "Basic/Machine", "to": "Basic/Asset"}
    assert first.steps[1].params == {
        "ckTypeId": "Basic/Asset",
        "from": "Serial",
        "to": "SerialNumber",
    }
    assert first.steps[2].params["map"] == {"Running": "InService", "Stopped": "OutOfService"}
    assert (second.from_version, second.to_version, second.breaking) == (
        Version(2),
        Version(2, 1),
        False,
    )


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (
            "[{action: Rename, from: A, to: B}]",
            "step 0: unknown action 'Rename'; use one of: "
            "RenameAttribute, ChangeCkType, SetValue, MapValue, CopyAttribute, DeleteAttribute",
        ),
        (
            "[{action: RenameAttribute, from: A}]",
            "step 0 (RenameAttribute): missing parameter 'to'",
        ),
        (
            "[{action: DeleteAttribute, attribute: A}, {action: SetValue, attribute: A}]",
            "step 1 (SetValue): missing parameter 'value'",
        ),
        (
            "[{action: ChangeCkType, to: '${this}/B'}]",
            "step 0 (ChangeCkType): missing parameter 'ckTypeId'",
        ),
        (
            "[{action: Transform, target: {ckTypeId: '${this}/T'}, transform: {type: Explode}}]",
            "step 0: unknown action 'Explode'",
        ),
        (
            "[{stepId: s1, action: Transform, transform: {type: RenameAttribute, "
            "sourceAttribute: A}}]",
            "step 0 's1' (RenameAttribute): missing parameter 'to'",
        ),
        (
            "[{action: Transform, transform: {type: RenameAttribute, sourceAttribute: A, "
            "targetAttribute: B}, onConflict: Merge}]",
            "step 0 (RenameAttribute): onConflict 'Merge' is not valid; use one of: Skip",
        ),
        (
            "[{action: Transform, transform: [RenameAttribute]}]",
            "step 0: a Transform step needs 'transform: {type: RenameAttribute, ...}'",
        ),
        (
            "[{action: MapValue, attribute: A, map: [a, b]}]",
            "step 0 (MapValue): parameter 'map' must be a mapping",
        ),
        (
            "[{action: SetValue, attribute: A, value: 1, onlyIfMissing: maybe}]",
            "step 0 (SetValue): parameter 'onlyIfMissing' must be true or false",
        ),
        (
            "[{action: CopyAttribute, from: A, to: 3}]",
            "step 0 (CopyAttribute): parameter 'to' must be an attribute name",
        ),
        (
            "[{action: DeleteAttribute, attribute: A, ckTypeId: Nope}]",
            "step 0 (DeleteAttribute): parameter 'ckTypeId': reference 'Nope' is not valid",
        ),
        ("{action: DeleteAttribute}", "steps: 'steps' must be a list of steps"),
    ],
)
def test_invalid_steps_name_file_and_step(steps: str, reason: str) -> None:
    with pytest.raises(ModelError) as error:
        library_with_migrations(
            migrations="migrations: [{fromVersion: 1.0.0, toVersion: 2.0.0, scriptPath: s.yaml}]",
            s=f"steps: {steps}",
        )
    assert len(error.value.details) == 1, error.value.details
    assert str(error.value.details[0]).startswith(f"migrations/s.yaml: {reason}")


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (
            "migrations: [{fromVersion: 1.0.0, toVersion: 2.0.0, scriptPath: nope.yaml}]",
            "migrations/migrations.yaml: migration 1.0.0 -> 2.0.0: "
            "script 'nope.yaml' does not exist",
        ),
        (
            "migrations: [{fromVersion: 2.0.0, toVersion: 1.0.0, scriptPath: s.yaml}]",
            "migrations/migrations.yaml: migration 2.0.0 -> 1.0.0: fromVersion must be lower",
        ),
        (
            "migrations: [{fromVersion: x, toVersion: 2.0.0, scriptPath: s.yaml}]",
            "migrations/migrations.yaml: migration x -> 2.0.0: "
            "fromVersion: version 'x' is not valid",
        ),
        (
            "migrations: [{fromVersion: 1.0.0, toVersion: 2.0.0}]",
            "migrations/migrations.yaml: migration 1.0.0 -> 2.0.0: missing 'scriptPath'",
        ),
    ],
)
def test_invalid_meta_file(meta: str, reason: str) -> None:
    with pytest.raises(ModelError) as error:
        library_with_migrations(migrations=meta, s="steps: []")
    assert str(error.value.details[0]).startswith(reason)


def test_unknown_keys_and_unlisted_scripts_are_warnings() -> None:
    library = library_with_migrations(
        migrations="migrations: [{fromVersion: 1.0.0, toVersion: 2.0.0, scriptPath: s.yaml, "
        "risky: 1}]",
        s="steps: [{action: DeleteAttribute, attribute: A, colour: red}]\npostValidations: []",
        extra="steps: []",
    )
    assert [str(w) for w in library.warnings] == [
        "migrations/migrations.yaml: migration 1.0.0 -> 2.0.0: unknown key 'risky' in a "
        "migration is kept but not used; known keys: breaking, description, fromVersion, "
        "scriptPath, toVersion",
        "migrations/s.yaml: unknown key 'postValidations' in a script is kept but not used; "
        "known keys: description, sourceVersion, steps, targetVersion",
        "migrations/s.yaml: step 0 (DeleteAttribute): unknown key 'colour' in a DeleteAttribute "
        "step is kept but not used; known keys: attribute, ckTypeId, continueOnError, stepId",
        "migrations/extra.yaml: script is not listed in migrations.yaml and is not used; list "
        "it or remove it",
    ]
    (compiled,) = dump_library(library)["migrations"]
    assert (compiled["risky"], compiled["postValidations"]) == (1, [])  # kept for export
    with pytest.raises(ModelError, match="an error under --strict"):
        load_library_from_documents(
            [
                ("ckModel.yaml", {"modelId": "Lib-2.0.0"}),
                ("migrations/extra.yaml", {"steps": []}),
                ("migrations/migrations.yaml", {"migrations": []}),
            ],
            strict=True,
        )


NESTED_SCRIPT = """
sourceVersion: "2.0.0"
targetVersion: "2.1.0"
description: Rename Time to Received
steps:
  - stepId: rename-time
    description: Rename Time to Received on events
    action: Transform
    target: {ckTypeId: '${this}/Event', blueprintSourceOnly: false}
    transform: {type: RenameAttribute, sourceAttribute: Time, targetAttribute: Received}
    onConflict: Skip
    continueOnError: false
"""


def test_nested_steps_in_migration_meta_yaml() -> None:
    library = load_library_from_documents(
        [
            ("ckModel.yaml", {"modelId": "Lib-2.1.0"}),
            (
                "migrations/migration-meta.yaml",
                parse_yaml(
                    "ckModelId: Lib-2.1.0\nmigrations: [{fromVersion: '2.0.0', toVersion: "
                    "'2.1.0', scriptPath: 2.0.0-to-2.1.0.yaml, description: d, breaking: true}]"
                ),
            ),
            ("migrations/2.0.0-to-2.1.0.yaml", parse_yaml(NESTED_SCRIPT)),
        ]
    )
    assert library.warnings == []
    (migration,) = library.migrations
    assert migration.breaking
    assert migration.steps == [
        step(
            "RenameAttribute",
            ckTypeId="Lib/Event",
            stepId="rename-time",
            onConflict="Skip",
            continueOnError=False,
            **{"from": "Time", "to": "Received"},
        )
    ]
    reloaded = load_library_from_documents([("lib.yaml", dump_library(library))])
    assert reloaded.migrations == library.migrations


def test_on_conflict() -> None:
    rename = {"from": "Time", "to": "Received"}
    values = {"Time": 1, "Received": 2}
    assert apply_steps([step("RenameAttribute", **rename, onConflict="Skip")], "X/E", values)[
        1
    ] == {"Time": 1, "Received": 2}
    assert apply_steps([step("RenameAttribute", **rename)], "X/E", values)[1] == {"Received": 1}
    failing = step("RenameAttribute", **rename, onConflict="Fail", stepId="r1")
    with pytest.raises(ValidationError, match="migration step r1: attribute 'Received' already"):
        apply_steps([failing], "X/E", values)
    failing.params["continueOnError"] = True
    assert apply_steps([failing], "X/E", values)[1] == values


def test_inline_migrations_in_compiled_form(build: BuildLibrary) -> None:
    library = load_library_from_documents(
        [
            (
                "lib.yaml",
                parse_yaml("""
modelId: Lib-2.0.0
migrations:
  - fromVersion: 1.0.0
    toVersion: 2.0.0
    steps: [{action: DeleteAttribute, attribute: Old, ckTypeId: '${this}/T'}]
"""),
            )
        ]
    )
    assert library.migrations[0].steps == [
        step("DeleteAttribute", attribute="Old", ckTypeId="Lib/T")
    ]


def migration(start: str, end: str) -> Migration:
    return Migration(Version.parse(start), Version.parse(end), [])


def test_migrations_between(build: BuildLibrary) -> None:
    library = build("Lib-3.0.0")
    library.migrations = [migration("1.0", "2.0"), migration("2.0", "2.1"), migration("2.5", "3.0")]
    chain = migrations_between(library, Version(1), Version(3))
    assert [str(m.to_version) for m in chain] == ["2.0.0", "2.1.0", "3.0.0"]
    assert [str(m.to_version) for m in migrations_between(library, Version(2), Version(2, 5))] == [
        "2.1.0"
    ]
    assert migrations_between(library, Version(1, 5), Version(2)) == [library.migrations[0]]
    assert migrations_between(library, Version(3), Version(3)) == []
    with pytest.raises(ValidationError, match="cannot migrate Lib down"):
        migrations_between(library, Version(3), Version(2))
    library.migrations.append(migration("1.0", "3.0"))  # the smaller step wins
    assert [str(m.to_version) for m in migrations_between(library, Version(1), Version(3))] == [
        "2.0.0",
        "2.1.0",
        "3.0.0",
    ]


def test_entry_points_from_several_versions(build: BuildLibrary) -> None:
    library = build("Lib-3.0.0")
    library.migrations = [
        migration("1.2", "2.0"),
        migration("2.0", "3.0"),
        migration("2.1", "3.0"),
        migration("2.2", "3.0"),
    ]
    chain = migrations_between(library, Version(2, 1, 5), Version(3))
    assert [(str(m.from_version), str(m.to_version)) for m in chain] == [("2.1.0", "3.0.0")]
    chain = migrations_between(library, Version(1), Version(3))
    assert [(str(m.from_version), str(m.to_version)) for m in chain] == [
        ("1.2.0", "2.0.0"),
        ("2.0.0", "3.0.0"),
    ]


def test_apply_the_fixture_migrations(basic: CkLibrary) -> None:
    steps = [s for m in migrations_between(basic, Version(1), Version(2, 1)) for s in m.steps]
    attributes = {"Serial": "M-1", "Status": "Running", "LegacyCode": 7, "Name": "Press"}
    type_id, migrated = apply_steps(steps, "Basic/Machine", attributes)
    assert type_id == "Basic/Asset"
    assert migrated == {"SerialNumber": "M-1", "Status": "InService", "Name": "Press"}
    assert attributes["Serial"] == "M-1"  # input untouched


def test_rename_copy_delete() -> None:
    steps = [
        step("RenameAttribute", **{"from": "Voltage", "to": "VoltageL1"}),
        step("CopyAttribute", **{"from": "VoltageL1", "to": "VoltageL2"}),
        step("DeleteAttribute", attribute="Obsolete"),
        step("RenameAttribute", **{"from": "Missing", "to": "StillMissing"}),
    ]
    assert apply_steps(steps, "X/M", {"Voltage": 230, "Obsolete": 1}) == (
        "X/M",
        {"VoltageL1": 230, "VoltageL2": 230},
    )


def test_set_and_map_values() -> None:
    steps = [
        step("SetValue", attribute="Enabled", value=True),
        step("SetValue", attribute="State", value="Unknown", onlyIfMissing=True),
        step("MapValue", attribute="State", map={"Running": "Active"}, default="Unknown"),
        step("MapValue", attribute="Level", map={1: 10}),
    ]
    assert apply_steps(steps, "X/M", {"State": "Running", "Level": 2}) == (
        "X/M",
        {"State": "Active", "Level": 2, "Enabled": True},
    )
    assert apply_steps(steps, "X/M", {"State": "Broken"})[1]["State"] == "Unknown"
    assert apply_steps(steps, "X/M", {"Level": 1})[1] == {
        "Level": 10,
        "Enabled": True,
        "State": "Unknown",
    }


def test_nested_record_paths() -> None:
    steps = [
        step("RenameAttribute", **{"from": "PhaseL1.Voltage", "to": "PhaseL1.VoltageRms"}),
        step("SetValue", attribute="Limits.Max", value=250),
    ]
    attributes = {"PhaseL1": {"Voltage": 230.1, "Current": 2}}
    assert apply_steps(steps, "X/M", attributes)[1] == {
        "PhaseL1": {"VoltageRms": 230.1, "Current": 2},
        "Limits": {"Max": 250},
    }
    with pytest.raises(ValidationError, match="not a record"):
        apply_steps([step("SetValue", attribute="Name.First", value="x")], "X/M", {"Name": "n"})


def test_steps_filter_by_type_and_base_types() -> None:
    steps = [
        step("SetValue", ckTypeId="X/Meter", attribute="A", value=1),
        step("SetValue", ckTypeId="X/Other", attribute="B", value=2),
        step("ChangeCkType", ckTypeId="X/EnergyMeter", to="X/PowerMeter"),
        step("SetValue", ckTypeId="X/Meter", attribute="C", value=3),  # bases no longer known
        step("SetValue", ckTypeId="X/PowerMeter", attribute="D", value=4),
    ]
    assert apply_steps(steps, "X/EnergyMeter", {}, base_type_ids=["X/Meter"]) == (
        "X/PowerMeter",
        {"A": 1, "D": 4},
    )
    assert apply_steps(steps, "X/EnergyMeter", {}) == ("X/PowerMeter", {"D": 4})
