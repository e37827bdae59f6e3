"""Shared data of the communication tests: the example data flow and its pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DATAFLOW = ROOT.parent / "shared" / "examples" / "communication" / "meter-readings-dataflow.yaml"
DATAFLOW_COPY = Path(__file__).with_name("meter-readings-dataflow.yaml")

READ_METER = "6570c0000000000000000011"
UPDATE_METER = "6570c0000000000000000012"
EDGE_ADAPTER = "6570c0000000000000000002"
MESH_ADAPTER = "6570c0000000000000000003"


def dataflow_file() -> Path:
    """The example runtime file (the shared copy when present, else the one kept here)."""
    return DATAFLOW if DATAFLOW.is_file() else DATAFLOW_COPY


def pipeline_definitions() -> dict[str, str]:
    """rtId → PipelineDefinition text of the example's pipelines."""
    document: dict[str, Any] = yaml.safe_load(dataflow_file().read_text())
    out = {}
    for entity in document["entities"]:
        for attribute in entity.get("attributes", []):
            if attribute["id"] == "System.Communication/PipelineDefinition":
                out[entity["rtId"]] = attribute["value"]
    return out
