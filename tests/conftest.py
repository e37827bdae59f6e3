"""Shared fixtures: a fresh data directory, a tenant with the Demo.Energy library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workbench

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "notebooks" / "data" / "Demo.Energy"
DEMO_LIBRARY = DEMO_DIR / "ConstructionKit"
DEMO_RUNTIME = DEMO_DIR / "runtime-sample.yaml"

SITE = "6560a1b2c3d4e5f607182930"
BUILDING = "6560a1b2c3d4e5f607182931"
METER_1 = "6560a1b2c3d4e5f607182932"
METER_2 = "6560a1b2c3d4e5f607182933"


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[workbench.Workbench]:
    with workbench.open(tmp_path / "wb") as opened:
        yield opened


@pytest.fixture
def energy(wb: workbench.Workbench) -> Any:
    """Tenant ``energy`` with Demo.Energy imported and no entities."""
    tenant = wb.tenants.create("energy")
    tenant.ck.import_library(DEMO_LIBRARY)
    return tenant


@pytest.fixture
def demo(energy: Any) -> Any:
    """Tenant ``energy`` with Demo.Energy and the sample runtime entities."""
    from workbench.runtime.files import import_runtime_file

    import_runtime_file(energy.entities, energy.model, DEMO_RUNTIME)
    return energy
