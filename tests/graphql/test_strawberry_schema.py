"""The generated schema through Strawberry's pipeline (what the HTTP service mounts)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import METER_1
from workbench.graphql import SchemaCache


def test_strawberry_runs_the_generated_schema_and_shapes_errors(
    demo: Any, schemas: SchemaCache
) -> None:
    strawberry_schema = schemas.get(demo).as_strawberry()
    context = schemas.context(demo)
    query = """query($id: ID) { runtime { rtDemoEnergyEnergyMeter(rtId: $id) {
        items { name state } } } }"""
    result = asyncio.run(strawberry_schema.execute(query, {"id": METER_1}, context_value=context))
    assert result.errors is None
    assert result.data == {
        "runtime": {
            "rtDemoEnergyEnergyMeter": {"items": [{"name": "Meter-001", "state": "ACTIVE"}]}
        }
    }
    bad = strawberry_schema.execute_sync(
        '{ runtime { runtimeEntities(ckTypeId: "Nope/Nope") { totalCount } } }',
        context_value=context,
    )
    assert bad.errors is not None
    assert bad.errors[0].extensions == {"code": "NOT_FOUND"}
    assert "type Query" in strawberry_schema.as_str()
