"""An edge adapter's pipelines cannot read or write entities: the edge reaches only its
controller and its bus (COMMUNICATION.md), so an entity node fails its execution with an error
that names the node and the way out (a mesh adapter's pipeline, through ToPipelineDataEvent@1),
and a stream write in the same adapter still goes into the outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workbench.communication import build_pipeline
from workbench.communication.edge import EdgeState, EdgeTenant
from workbench.communication.node import ExecutionEnvironment
from workbench.messaging.local import LocalMessageBus

READ = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: GetRtEntitiesByType@1
    ckTypeId: Demo.Energy/EnergyMeter
    targetPath: $.meters
"""
WRITE = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: ApplyChanges@2
    entityUpdatesPath: $.changes
"""
STREAM = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SaveStreamDataInArchive@1
    path: $.updates
    ckTypeId: Demo.Energy/EnergyMeter
"""


@pytest.mark.parametrize(
    ("definition", "node"), [(READ, "GetRtEntitiesByType@1"), (WRITE, "ApplyChanges@2")]
)
def test_entity_nodes_on_an_edge_adapter_fail_naming_the_node_and_the_fix(
    tmp_path: Path, definition: str, node: str
) -> None:
    bus = EdgeState(tmp_path / "edge").open_bus(LocalMessageBus(tenant="edge"))
    env = ExecutionEnvironment(pipeline_name="edge", tenant=EdgeTenant("edge", bus))
    data = {
        "changes": [
            {
                "rtId": f"{1:024x}",
                "ckTypeId": "Demo.Energy/EnergyMeter",
                "attributes": {"Name": "x"},
            }
        ]
    }

    async def run() -> None:
        result = await build_pipeline(definition, name="edge").execute(data, env)
        assert result.status == "Failed"
        assert node in (result.error or "")
        assert "edge adapter" in (result.error or "")
        assert "ToPipelineDataEvent@1" in (result.error or "")
        stream = await build_pipeline(STREAM, name="stream").execute(
            {
                "updates": [
                    {
                        "rtId": f"{1:024x}",
                        "timestamp": "2026-01-01T00:00:00+00:00",
                        "attributes": {"voltage": 1.0},
                    }
                ]
            },
            env,
        )
        assert stream.status == "Completed", stream.error
        assert bus.outbox.backlog() == 1

    asyncio.run(run())
    bus.outbox.close()
