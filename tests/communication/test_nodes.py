"""The nodes of the issue's slice, run over a data context and a real tenant (in process)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.communication.conftest import UPDATE_METER, dataflow_file, pipeline_definitions
from tests.conftest import METER_1
from workbench.communication import PipelineDefinitionError, run_pipeline
from workbench.runtime.files import import_runtime_file


def _run(body: str, input: Any = None, tenant: Any = None, debug: bool = False) -> Any:
    text = "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n" + body
    return asyncio.run(run_pipeline(text, input, name="t", tenant=tenant, debug=debug))


def test_example_update_pipeline_writes_the_meter(demo: Any) -> None:
    definition = pipeline_definitions()[UPDATE_METER]
    reading = {"reading": {"voltage": 231.5, "current": 12.25, "serialNumber": "EM-0001"}}
    result = asyncio.run(run_pipeline(definition, reading, tenant=demo, debug=True))
    assert result.status == "Completed", result.error
    meter = demo.entities.get(METER_1)
    assert (meter["voltage"], meter["current"]) == (231.5, 12.25)
    assert [step["node"] for step in result.trace] == [
        "input",
        "transformations[0] (GetRtEntitiesByType@1)",
        "transformations[1] (CreateUpdateInfo@1)",
        "transformations[2] (ApplyChanges@2)",
    ]
    assert result.output["_updates"][0]["attributes"] == {"Voltage": 231.5, "Current": 12.25}


def test_runtime_file_with_adapters_and_pipelines_imports(demo: Any) -> None:
    import_runtime_file(demo.entities, demo.model, dataflow_file())
    pipelines = demo.entities.find("System.Communication/Pipeline").items
    assert sorted(p["name"] for p in pipelines) == ["read meter", "update meter"]
    trigger = demo.entities.find("System.Communication/PipelineTrigger").items[0]
    assert trigger["cronExpression"] == "0 * * * * ?"


def test_insert_with_generated_rt_id_and_association(demo: Any) -> None:
    body = """
  - type: CreateUpdateInfo@1
    updateKind: INSERT
    generateRtId: true
    ckTypeId: Demo.Energy/Site
    targetPath: $.updates
    targetValueKind: Array
    targetValueWriteMode: Append
    attributeUpdates:
      - {attributeName: Name, attributeValueType: String, valuePath: $.name}
  - type: ApplyChanges@1
    path: $.updates
    targetPath: $.result
"""
    result = _run(body, {"name": "Plant 9"}, tenant=demo)
    assert result.status == "Completed", result.error
    assert result.output["result"]["inserted"] == 1
    rt_id = result.output["updates"][0]["rtId"]
    assert demo.entities.get(rt_id)["name"] == "Plant 9"


def test_apply_changes_failure_names_the_node(demo: Any) -> None:
    body = """
  - type: CreateUpdateInfo@1
    ckTypeId: Demo.Energy/EnergyMeter
    rtIdPath: $.missing
    targetPath: $.u
"""
    result = _run(body, {}, tenant=demo)
    assert result.status == "Failed"
    assert result.error.startswith(
        "pipeline 't', transformations[0] (CreateUpdateInfo@1): property 'rtIdPath': no rtId"
    )


def test_control_and_transform_nodes() -> None:
    body = """
  - type: SetArrayOfPrimitiveValues@1
    targetPath: $.raw
    values: [0, 50, 100]
  - type: ForEach@1
    iterationPath: $.raw
    targetPath: $.scaled
    transformations:
      - type: LinearScaler@1
        path: $.key
        targetPath: $.key
        sourceMin: 0
        sourceMax: 100
        targetMin: 4
        targetMax: 20
  - type: For@1
    count: 3
    transformations:
      - type: Math@1
        path: $.total
        operator: Add
        value: 2
        targetPath: $.total
  - type: If@1
    path: $.total
    operator: GreaterThan
    value: 5
    transformations:
      - type: SetPrimitiveValue@1
        targetPath: $.big
        value: true
  - type: Switch@1
    path: $.kind
    cases:
      - value: a
        transformations:
          - {type: SetPrimitiveValue@1, targetPath: $.picked, value: A}
    default:
      - {type: SetPrimitiveValue@1, targetPath: $.picked, value: other}
  - type: WriteJson@1
    targetPath: $.doc
    json: '{"a": {"b": 1, "c": [1, [2, 3]]}, "d": 2}'
  - type: Project@1
    path: $.doc
    targetPath: $.projected
    fields: [{path: a.b}, {path: d}]
  - type: Flatten@1
    path: $.doc.a.c
    targetPath: $.flat
  - type: Map@1
    path: $.doc
    targetPath: $.mapped
    mappings:
      - {sourcePath: $.d, targetPath: $.two}
      - {sourcePath: $.a.b, targetPath: $.state, valueMap: {"1": "On"}}
  - type: SelectByPath@1
    path: $.doc.d
    targetPath: $.selected
  - type: PrintDebug@1
    path: $.selected
"""
    result = _run(body, {"total": 0, "kind": "b"})
    assert result.status == "Completed", result.error
    out = result.output
    assert out["scaled"] == [4.0, 12.0, 20.0]
    assert out["total"] == 6
    assert out["big"] is True
    assert out["picked"] == "other"
    assert out["projected"] == {"a": {"b": 1}, "d": 2}
    assert out["flat"] == [1, 2, 3]
    assert out["mapped"] == {"two": 2, "state": "On"}
    assert result.printed == ["2"]


def test_simulation_and_filter_latest() -> None:
    body = """
  - type: Simulation@1
    simulations:
      - targetPath: $.sensor.temperature
        simulatorKey: Math.DoubleRandom
        configuration: "{min:15, max:35}"
      - {targetPath: $.sensor.count, simulatorKey: MATH.INTRANDOM_NOT, configuration: "{}"}
"""
    with pytest.raises(PipelineDefinitionError, match=r"simulations\.1\.simulatorKey"):
        _run(body)
    body = """
  - type: Simulation@1
    simulations:
      - targetPath: $.sensor.temperature
        simulatorKey: Math.DoubleRandom
        configuration: "{min:15, max:35}"
      - {targetPath: $.sensor.count, simulatorKey: Math.IntRandom, configuration: "{min:1, max:3}"}
      - {targetPath: $.sensor.word, simulatorKey: Text.Lorem.Word}
  - type: FilterLatestUpdateInfo@1
    path: $.updates
"""
    updates = [
        {"rtId": "a", "timestamp": "2026-01-01T00:00:00Z", "attributes": {"x": 1}},
        {"rtId": "a", "timestamp": "2026-01-02T00:00:00Z", "attributes": {"x": 2}},
        {"rtId": "b", "timestamp": "2026-01-01T00:00:00Z", "attributes": {"x": 3}},
    ]
    result = _run(body, {"updates": updates})
    assert result.status == "Completed", result.error
    assert 15 <= result.output["sensor"]["temperature"] <= 35
    assert result.output["sensor"]["count"] in (1, 2, 3)
    assert [u["attributes"]["x"] for u in result.output["updates"]] == [2, 3]


def test_stream_points_through_the_stream_service(demo: Any) -> None:
    body = f"""
  - type: CreateUpdateInfo@1
    ckTypeId: Demo.Energy/EnergyMeter
    rtId: {METER_1}
    timestampPath: $.at
    targetPath: $.points
    targetValueKind: Array
    attributeUpdates:
      - {{attributeName: Voltage, attributeValueType: Double, valuePath: $.v}}
  - type: SaveStreamDataInArchive@1
    path: $.points
    targetPath: $.saved
"""
    result = _run(body, {"v": 229.0, "at": "2026-03-01T10:00:00+00:00"}, tenant=demo)
    assert result.status == "Completed", result.error
    assert result.output["saved"] == {"written": 1}
    frame = demo.streams("Demo.Energy/EnergyMeter").read(rt_ids=[METER_1]).to_pandas()
    assert list(frame["voltage"]) == [229.0]


def test_config_by_well_known_name(demo: Any) -> None:
    demo.entities.create(
        "System.Communication/PipelineConfiguration",
        {"name": "limits", "configuration": '{"max": 240}'},
        rt_well_known_name="limits",
    )
    body = """
  - type: GetPipelineConfigByWellKnownName@1
    wellKnownName: limits
    targetPath: $.config
"""
    result = _run(body, {}, tenant=demo)
    assert result.status == "Completed", result.error
    assert result.output["config"]["configuration"] == {"max": 240}


@pytest.mark.parametrize("node", ["ToPipelineDataEvent@1"])
def test_data_event_outside_an_adapter_is_a_clear_error(node: str) -> None:
    body = f"  - type: {node}\n    targetPipelineRtId: 6570c0000000000000000012\n"
    result = _run(body)
    assert "run the pipeline in an adapter" in (result.error or "")
