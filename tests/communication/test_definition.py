"""Parsing and validating pipeline definitions: every bad definition gets its clear error."""

from __future__ import annotations

import pytest

from tests.communication.conftest import READ_METER, UPDATE_METER, pipeline_definitions
from workbench.communication import (
    PipelineDefinitionError,
    default_registry,
    parse_pipeline,
    validate_pipeline,
)


def test_example_pipelines_parse() -> None:
    definitions = pipeline_definitions()
    read = parse_pipeline(definitions[READ_METER], name="read meter")
    assert read.trigger_types() == ["FromPolling@1", "FromPipelineTriggerEvent@1"]
    assert [n.type for n in read.transformations] == [
        "Simulation@1",
        "SetPrimitiveValue@1",
        "ToPipelineDataEvent@1",
    ]
    update = parse_pipeline(definitions[UPDATE_METER], name="update meter")
    assert update.transformations[1].properties["rtIdPath"] == "$.meters[0].rtId"


def _problems(text: str) -> list[str]:
    return [str(d) for d in validate_pipeline(text, name="p")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "triggers: []\ntransformations: []\nsteps: []\n",
            "line 3: p: unknown root key 'steps': a pipeline has exactly the two root keys",
        ),
        ("transformations: []\n", "the root key 'triggers' is missing"),
        ("triggers: []\ntransformations: []\n", "no trigger: add one"),
        (
            "triggers:\n  - type: FromPolling\n    interval: 1\ntransformations: []\n",
            "line 2: pipeline 'p', triggers[0] (?): 'type' is 'FromPolling'; every node names "
            "its type as Name@Version",
        ),
        (
            "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
            "  - type: Teleport@1\n",
            "line 4: pipeline 'p', transformations[0] (Teleport@1): node Teleport@1 is not "
            "supported by this adapter; supported transformation nodes: ApplyChanges@1",
        ),
        (
            "triggers:\n  - type: FromPolling@1\n    intervall: 00:00:10\ntransformations: []\n",
            "line 3: pipeline 'p', triggers[0] (FromPolling@1): unknown property 'intervall'",
        ),
        (
            "triggers:\n  - type: FromPolling@1\ntransformations: []\n",
            "pipeline 'p', triggers[0] (FromPolling@1): property 'interval' is required",
        ),
        (
            "triggers:\n  - type: FromPolling@1\n    interval: soon\ntransformations: []\n",
            "line 3: pipeline 'p', triggers[0] (FromPolling@1): property 'interval'",
        ),
        (
            "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
            "  - type: CreateUpdateInfo@1\n    ckTypeId: A/B\n    targetPath: $.u\n"
            "    updateKind: Modify\n",
            "line 7: pipeline 'p', transformations[0] (CreateUpdateInfo@1): property "
            "'updateKind' is 'Modify'; use one of: Insert, Update, Upsert, Delete, INSERT",
        ),
        (
            "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
            "  - type: ForEach@1\n    transformations:\n      - type: Math@1\n"
            "        path: $.key\n",
            "line 6: pipeline 'p', transformations[0].transformations[0] (Math@1): property "
            "'operator' is required",
        ),
        (
            "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
            "  - type: FromPolling@1\n    interval: 1\n",
            "FromPolling@1 is a trigger node: list it under triggers:",
        ),
        ("triggers: [a\n", "p: not valid YAML"),
    ],
)
def test_bad_definitions_name_pipeline_node_property_and_line(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(expected in p for p in problems), problems


def test_enum_values_accept_pascal_and_constant_case() -> None:
    for kind in ("Update", "UPDATE"):
        text = (
            "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n"
            f"  - type: CreateUpdateInfo@1\n    ckTypeId: A/B\n    targetPath: $.u\n"
            f"    updateKind: {kind}\n    generateRtId: true\n"
        )
        assert _problems(text) == []


def test_error_is_raised_with_every_problem() -> None:
    text = "triggers:\n  - type: X@1\n  - type: Y@1\ntransformations: []\nz: 1\n"
    with pytest.raises(PipelineDefinitionError) as caught:
        parse_pipeline(text, name="many")
    assert len(caught.value.details) == 3
    assert "pipeline 'many' is invalid" in str(caught.value)


def test_every_node_publishes_a_json_schema() -> None:
    import jsonschema

    schemas = default_registry().schemas()
    required = {
        "FromPolling@1", "FromExecutePipelineCommand@1", "FromPipelineDataEvent@1",
        "FromPipelineTriggerEvent@1", "FromHttpRequest@1", "FromWatchRtEntity@1", "ForEach@1",
        "For@1", "If@1", "Switch@1", "SelectByPath@1", "SetPrimitiveValue@1", "Simulation@1",
        "GetRtEntitiesByType@1", "GetRtEntitiesById@1", "GetPipelineConfigByWellKnownName@1",
        "Project@1", "Flatten@1", "Map@1", "SetArrayOfPrimitiveValues@1", "WriteJson@1",
        "Math@1", "LinearScaler@1", "Logger@1", "PrintDebug@1", "CreateUpdateInfo@1",
        "CreateAssociationUpdate@1", "FilterLatestUpdateInfo@1", "ApplyChanges@1",
        "ApplyChanges@2", "UpdateRtEntityIfNewer@1", "SaveStreamDataInArchive@1",
        "ToPipelineDataEvent@1", "ToWebhook@1",
    }  # fmt: skip
    assert required <= set(schemas)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["title"] == name
        assert schema["additionalProperties"] is False
        assert schema["description"], name
