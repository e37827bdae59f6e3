"""Notebooks for the promotion tests: a CK library notebook in two versions, a bot, an
extension notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

PLANT_V1 = """\
modelId: Plant-1.0.0
dependencies: ["System-[2.0,3.0)"]
attributes:
  - id: FlowRate
    valueType: Double
types:
  - typeId: Pump
    derivedFromCkTypeId: ${System}/Entity
    attributes:
      - id: ${System}/Name
        name: Name
      - id: ${this}/FlowRate
        name: FlowRate
        isOptional: true
"""

PLANT_V2 = (
    PLANT_V1.replace("Plant-1.0.0", "Plant-1.1.0").replace(
        "    valueType: Double\n", "    valueType: Double\n  - id: Speed\n    valueType: Int\n", 1
    )
    + "      - id: ${this}/Speed\n        name: Speed\n        isOptional: true\n"
)


def write_notebook(
    path: Path, cells: list[str], *, parameters: str | None = None, metadata: Any = None
) -> Path:
    """A notebook of code cells (markdown for cells starting with '# ' and no code)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    if metadata:
        nb.metadata["workbench"] = metadata
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nbformat.write(nb, path)
    return path


def ck_notebook(path: Path, library: str) -> Path:
    return write_notebook(path, ["%%ck\n" + library, "import pandas as pd\nimport json"])
