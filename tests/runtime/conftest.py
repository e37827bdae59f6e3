"""Models for the value and filter tests: Demo.Energy and a library using every value type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench.ck.loader import load_library, load_library_from_documents
from workbench.ck.model import CkModel
from workbench.ck.resolver import resolve_model

REPO = Path(__file__).resolve().parents[2]

#: a library with one attribute per value type, enums (plain and flags), derived records,
#: defaults, and sibling subtypes that define the same attribute name differently
VALUES_LIBRARY = """
attributes:
  - {id: Text, valueType: String}
  - {id: Flag, valueType: Boolean}
  - {id: Count, valueType: Int}
  - {id: Big, valueType: Int64}
  - {id: Ratio, valueType: Double}
  - {id: At, valueType: DateTime}
  - {id: AtOffset, valueType: DateTimeOffset}
  - {id: Duration, valueType: TimeSpan}
  - {id: Level, valueType: Enum, valueCkEnumId: '${this}/Level'}
  - {id: Access, valueType: Enum, valueCkEnumId: '${this}/Access'}
  - {id: Limits, valueType: Record, valueCkRecordId: '${this}/Limits'}
  - {id: History, valueType: RecordArray, valueCkRecordId: '${this}/Limits'}
  - {id: Labels, valueType: StringArray}
  - {id: Codes, valueType: IntArray}
  - {id: Location, valueType: GeospatialPoint}
  - {id: Blob, valueType: Binary}
  - {id: BlobRef, valueType: BinaryLinked}
  - {id: Low, valueType: Double}
  - {id: High, valueType: Double}
  - {id: Unit, valueType: String}
  - {id: Mode, valueType: Enum, valueCkEnumId: '${this}/Level', defaultValues: [Medium]}
  - {id: Channels, valueType: StringArray, defaultValues: [a, b]}
enums:
  - enumId: Level
    values: [{key: 0, name: Low}, {key: 1, name: Medium}, {key: 2, name: High}]
  - enumId: Access
    useFlags: true
    values:
      - {key: 0, name: None}
      - {key: 1, name: Read}
      - {key: 2, name: Write}
      - {key: 4, name: Execute}
records:
  - recordId: Limits
    attributes:
      - {id: '${this}/Low', name: Low}
      - {id: '${this}/High', name: High, isOptional: true}
  - recordId: UnitLimits
    derivedFromCkRecordId: '${this}/Limits'
    attributes:
      - {id: '${this}/Unit', name: Unit}
  - recordId: Other
    attributes:
      - {id: '${this}/Unit', name: Unit}
associationRoles:
  - {id: Holds, outboundName: Holds, outboundMultiplicity: N,
     inboundName: HeldBy, inboundMultiplicity: ZeroOrOne}
types:
  - typeId: Thing
    derivedFromCkTypeId: '${System}/Entity'
    attributes:
      - {id: '${System}/Name', name: Name}
      - {id: '${this}/Text', name: Text, isOptional: true}
      - {id: '${this}/Flag', name: Flag, isOptional: true}
      - {id: '${this}/Count', name: Count, isOptional: true, defaultValues: [7]}
      - {id: '${this}/Big', name: Big, isOptional: true}
      - {id: '${this}/Ratio', name: Ratio, isOptional: true}
      - {id: '${this}/At', name: At, isOptional: true}
      - {id: '${this}/AtOffset', name: AtOffset, isOptional: true}
      - {id: '${this}/Duration', name: Duration, isOptional: true}
      - {id: '${this}/Level', name: Level, isOptional: true}
      - {id: '${this}/Access', name: Access, isOptional: true}
      - {id: '${this}/Limits', name: Limits, isOptional: true}
      - {id: '${this}/History', name: History, isOptional: true}
      - {id: '${this}/Labels', name: Labels, isOptional: true}
      - {id: '${this}/Codes', name: Codes, isOptional: true}
      - {id: '${this}/Location', name: Location, isOptional: true}
      - {id: '${this}/Blob', name: Blob, isOptional: true}
      - {id: '${this}/BlobRef', name: BlobRef, isOptional: true}
      - {id: '${this}/Mode', name: Mode, isOptional: true}
      - {id: '${this}/Channels', name: Channels, isOptional: true}
  - typeId: Shape
    derivedFromCkTypeId: '${System}/Entity'
    isAbstract: true
    attributes:
      - {id: '${System}/Name', name: Name}
  - typeId: Box
    derivedFromCkTypeId: '${this}/Shape'
    attributes:
      - {id: '${this}/Count', name: Size, isOptional: true}
      - {id: '${this}/Unit', name: Label, isOptional: true}
  - typeId: Ball
    derivedFromCkTypeId: '${this}/Shape'
    attributes:
      - {id: '${this}/Text', name: Size, isOptional: true}
      - {id: '${this}/Unit', name: Label, isOptional: true}
  - typeId: Crate
    derivedFromCkTypeId: '${this}/Shape'
    attributes:
      - {id: '${this}/Ratio', name: Weight, isOptional: true}
  - typeId: Holder
    derivedFromCkTypeId: '${System}/Entity'
    attributes:
      - {id: '${System}/Name', name: Name, isOptional: true}
    associations:
      - {id: '${this}/Holds', targetCkTypeId: '${this}/Shape'}
"""


def demo_dir() -> Path:
    """The project's copy of the Demo.Energy example."""
    return REPO / "notebooks" / "data" / "Demo.Energy"


@pytest.fixture(scope="session")
def demo_model() -> CkModel:
    return resolve_model([load_library(demo_dir() / "ConstructionKit")])


@pytest.fixture(scope="session")
def demo_entities() -> list[dict[str, Any]]:
    """The entities of Demo.Energy's runtime-sample.yaml, as parsed YAML."""
    document = yaml.safe_load((demo_dir() / "runtime-sample.yaml").read_text(encoding="utf-8"))
    entities: list[dict[str, Any]] = document["entities"]
    return entities


@pytest.fixture(scope="session")
def values_model() -> CkModel:
    documents = [
        ("ckModel.yaml", {"modelId": "Test.Values-1.0.0", "dependencies": ["System-[2.0,3.0)"]}),
        ("elements.yaml", yaml.safe_load(VALUES_LIBRARY)),
    ]
    return resolve_model([load_library_from_documents(documents)])
