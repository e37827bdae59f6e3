"""Adapter notebooks of the promotion tests: a custom node (ScaleValue@1, Python with a JSON
Schema) and pipelines that use it."""

from __future__ import annotations

from tests.conftest import METER_1

SCALE_NODE = '''\
from workbench.communication import Node
from workbench.communication.registry import register_node


@register_node
class ScaleValue(Node):
    """Multiply the number at path by factor."""

    type_name = "ScaleValue@1"
    properties = {
        "factor": {"type": "number", "description": "the multiplier"},
        "offset": {"type": "number", "minimum": 0, "description": "added after scaling"},
    }
    required = ("factor",)

    async def run(self, context, env):
        value = context.get(self.path) * self.prop("factor") + self.prop("offset", 0)
        self.write(context, value)
'''


def scale_pipeline(factor: object = 2, reading: float = 115.0) -> str:
    """Reads ``reading``, scales it with the custom node, writes it as METER_1's voltage."""
    return f"""triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SetPrimitiveValue@1
    targetPath: $.reading
    value: {reading}
  - type: ScaleValue@1
    path: $.reading
    targetPath: $.voltage
    factor: {factor}
  - type: CreateUpdateInfo@1
    targetPath: $._updates
    targetValueKind: Array
    targetValueWriteMode: Append
    updateKind: UPDATE
    ckTypeId: Demo.Energy/EnergyMeter
    rtId: {METER_1}
    attributeUpdates:
      - {{attributeName: Voltage, attributeValueType: Double, valuePath: $.voltage}}
  - type: ApplyChanges@2
    entityUpdatesPath: $._updates
"""


def adapter_cells(factor: object = 2, node: str = SCALE_NODE) -> list[str]:
    return [node, f"%%pipeline --name scale\n{scale_pipeline(factor)}"]
