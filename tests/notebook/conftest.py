"""A real IPython shell with the workbench extension loaded on a fresh data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("IPython", reason="the notebook extra is not installed")

import workbench

TENANT = "acme"

PLANT_V1 = """\
modelId: Plant-1.0.0
dependencies: ["System-[2.0,3.0)"]
attributes:
  - id: FlowRate
    valueType: Double
    metaData: [{key: unit, value: m3/h}]
  - id: Status
    valueType: String
types:
  - typeId: Machine
    derivedFromCkTypeId: ${System}/Entity
    isAbstract: true
    attributes:
      - id: ${System}/Name
        name: Name
      - id: ${this}/Status
        name: Status
        isOptional: true
  - typeId: Pump
    derivedFromCkTypeId: ${this}/Machine
    attributes:
      - id: ${this}/FlowRate
        name: FlowRate
        isOptional: true
    associations:
      - id: ${this}/Feeds
        targetCkTypeId: ${this}/Machine
associationRoles:
  - id: Feeds
    outboundName: FeedsInto
    outboundMultiplicity: ZeroOrOne
    inboundName: FedBy
    inboundMultiplicity: N
"""


@pytest.fixture(scope="session")
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        wb.tenants.create(TENANT)
    return home


@pytest.fixture
def ip(shell: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell with ``%load_ext workbench.notebook`` done for tenant ``acme``."""
    monkeypatch.setenv("WORKBENCH_HOME", str(data_dir))
    monkeypatch.setenv("WORKBENCH_TENANT", TENANT)
    monkeypatch.setenv("WORKBENCH_USER", "ada")
    monkeypatch.delenv("WORKBENCH_API_URL", raising=False)
    shell.run_line_magic("load_ext", "workbench.notebook")
    yield shell
    shell.run_line_magic("unload_ext", "workbench.notebook")
    for name in list(shell.user_ns):
        if not name.startswith("_") and name not in shell.user_ns_hidden:
            shell.user_ns.pop(name)


@pytest.fixture
def plant(ip: Any) -> Any:
    """``wb`` after importing Plant-1.0.0 with ``%%ck``."""
    ip.run_cell_magic("ck", "", PLANT_V1)
    return ip.user_ns["wb"]
