"""An in-process tenant with Demo.Energy, its sample entities and the BotJobs library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from workbench.client.local import Workbench, open_workbench

BOT_JOBS_LIBRARY = Path(__file__).with_name("BotJobs.compiled.yaml")


def seed(tenant: Any, *, demo: bool = True) -> Any:
    from workbench.runtime.files import import_runtime_file

    if demo:
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
    tenant.ck.import_library(BOT_JOBS_LIBRARY)
    return tenant


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Workbench]:
    workbench = open_workbench(tmp_path / "wb")
    try:
        yield workbench
    finally:
        workbench.close()


@pytest.fixture
def tenant(home: Workbench) -> Any:
    return seed(home.tenants.create("jobs"))
