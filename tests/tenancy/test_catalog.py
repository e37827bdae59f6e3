"""A tenant's CK catalog: import, validation, upgrades with migrations, nothing changed on error."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_LIBRARY, METER_1, METER_2
from workbench.errors import ModelError


def _upgrade(tmp_path: Path, version: str, steps: str | None, edit: Any = None) -> Path:
    """A copy of Demo.Energy at ``version`` with an optional migration from 1.0.0."""
    target = tmp_path / f"Demo.Energy-{version}"
    shutil.copytree(DEMO_LIBRARY, target)
    model = target / "ckModel.yaml"
    model.write_text(model.read_text().replace("Demo.Energy-1.0.0", f"Demo.Energy-{version}"))
    if steps is not None:
        (target / "migrations").mkdir()
        (target / "migrations" / "migrations.yaml").write_text(
            "migrations:\n"
            f"  - {{fromVersion: 1.0.0, toVersion: {version}, scriptPath: upgrade.yaml}}\n"
        )
        (target / "migrations" / "upgrade.yaml").write_text(steps)
    if edit is not None:
        edit(target)
    return target


def _rename_state_to_status(target: Path) -> None:
    meters = target / "types" / "meters.yaml"
    meters.write_text(meters.read_text().replace("name: State", "name: Status"))


def test_import_reports_added_types_and_is_idempotent(energy: Any) -> None:
    again = energy.ck.import_library(DEMO_LIBRARY)
    assert again.unchanged
    assert "Demo.Energy/EnergyMeter" in energy.model.types


def test_changed_content_under_the_same_version_is_refused(energy: Any, tmp_path: Path) -> None:
    changed = _upgrade(tmp_path, "1.0.0", None, _rename_state_to_status)
    with pytest.raises(ModelError, match="new version"):
        energy.ck.import_library(changed)


def test_upgrade_runs_migrations_in_one_batch(demo: Any, tmp_path: Path) -> None:
    steps = (
        "steps:\n"
        "  - {action: RenameAttribute, ckTypeId: Demo.Energy/Meter, from: State, to: Status}\n"
        "  - {action: SetValue, ckTypeId: Demo.Energy/EnergyMeter, attribute: Current, value: 1.5,"
        " onlyIfMissing: true}\n"
    )
    upgraded = _upgrade(tmp_path, "1.1.0", steps, _rename_state_to_status)
    before = demo.entities.get(METER_1)
    report = demo.ck.import_library(upgraded)
    assert report.previous_model_id == "Demo.Energy-1.0.0"
    assert report.model_id == "Demo.Energy-1.1.0"
    assert report.migrated_entities == 2
    assert "Demo.Energy/EnergyMeter" in report.changed_types
    meter = demo.entities.get(METER_1)
    assert meter["status"] == "Active"
    assert "state" not in meter.attributes
    assert meter["current"] == 1.5
    assert meter.rt_version == before.rt_version + 1
    assert [
        e.rt_id for e in demo.entities.find("Demo.Energy/Meter", where=["status = Faulty"])
    ] == [METER_2]


def test_failed_upgrade_changes_nothing(demo: Any, tmp_path: Path) -> None:
    # the rename is missing: the new model has 'Status' but the entities keep 'State'
    # -- here the migration moves entities to a type that does not exist
    steps = (
        "steps:\n"
        "  - {action: ChangeCkType, ckTypeId: Demo.Energy/EnergyMeter, to: Demo.Energy/Nope}\n"
    )
    upgraded = _upgrade(tmp_path, "1.2.0", steps)
    with pytest.raises(ModelError, match="Nope"):
        demo.ck.import_library(upgraded)
    assert demo.model.libraries["Demo.Energy"].version.__str__() == "1.0.0"
    assert demo.entities.get(METER_1).ck_type_id == "Demo.Energy/EnergyMeter"


def test_downgrade_is_refused(demo: Any, tmp_path: Path) -> None:
    demo.ck.import_library(_upgrade(tmp_path, "1.3.0", None))
    older = _upgrade(tmp_path, "1.2.0", None)
    with pytest.raises(ModelError, match="downgrade"):
        demo.ck.import_library(older)


def test_removing_a_type_with_entities_is_refused(demo: Any, tmp_path: Path) -> None:
    def drop_gas_and_energy(target: Path) -> None:
        meters = target / "types" / "meters.yaml"
        text = meters.read_text()
        meters.write_text(text[: text.index("  - typeId: EnergyMeter")])

    smaller = _upgrade(tmp_path, "2.0.0", None, drop_gas_and_energy)
    with pytest.raises(ModelError, match="EnergyMeter"):
        demo.ck.import_library(smaller)
    assert "Demo.Energy/EnergyMeter" in demo.model.types


def test_import_from_another_process_is_seen(energy: Any, tmp_path: Path) -> None:
    import workbench

    home = energy._workbench.home
    assert "Demo.Energy-1.1.0" not in {lib.model_id for lib in energy.model.libraries.values()}
    with workbench.open(home) as other:
        other.tenant("energy").ck.import_library(_upgrade(tmp_path, "1.1.0", None))
    assert energy.model.libraries["Demo.Energy"].model_id == "Demo.Energy-1.1.0"
