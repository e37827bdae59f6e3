"""GetRtEntitiesByWellKnownName@1, GetAssociationTargets@1 and GetStreamData@1 on the demo
tenant: what they read, through the runtime and stream services."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import METER_1, METER_2
from workbench.communication import run_pipeline

METER = "Demo.Energy/EnergyMeter"


def _run(body: str, data: Any, tenant: Any) -> Any:
    definition = "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n" + body
    return asyncio.run(run_pipeline(definition, data, name="reads", tenant=tenant))


def test_entities_by_well_known_name_and_association_targets(demo: Any) -> None:
    for name in ("limits", "tariffs"):
        demo.entities.create(
            "System.Communication/PipelineConfiguration",
            {"name": name, "configuration": "{}"},
            rt_well_known_name=name,
        )
    body = f"""
  - {{type: GetRtEntitiesByWellKnownName@1, wellKnownName: limits, targetPath: $.one}}
  - {{type: GetRtEntitiesByWellKnownName@1, wellKnownNamePath: $.names, targetPath: $.many}}
  - {{type: GetAssociationTargets@1, rtId: "{METER_1}", associationName: parent,
     targetPath: $.parents}}
  - {{type: GetAssociationTargets@1, rtIdPath: $.meters, associationName: parent,
     targetPath: $.shared}}
"""
    result = _run(body, {"names": ["tariffs", "limits"], "meters": [METER_1, METER_2]}, demo)
    assert result.status == "Completed", result.error
    out = result.output
    assert out["one"]["rtWellKnownName"] == "limits"
    assert [e["rtWellKnownName"] for e in out["many"]] == ["tariffs", "limits"]
    expected = [e.rt_id for e in demo.entities.navigate(METER_1, "parent")]
    assert expected
    assert [e["rtId"] for e in out["parents"]] == expected
    both = {e.rt_id for m in (METER_1, METER_2) for e in demo.entities.navigate(m, "parent")}
    assert sorted(e["rtId"] for e in out["shared"]) == sorted(both)  # each target once
    missing = _run("  - {type: GetRtEntitiesByWellKnownName@1, wellKnownName: nope}\n", {}, demo)
    assert missing.status == "Failed"
    assert "'nope'" in str(missing.error)


def test_stream_data(demo: Any) -> None:
    demo.streams(METER).write(
        [
            {"rtId": r, "timestamp": f"2026-03-01T10:00:0{s}+00:00", "voltage": 230.0 + s}
            for s in range(3)
            for r in (METER_1, METER_2)
        ]
    )
    body = f"""
  - type: GetStreamData@1
    ckTypeId: {METER}
    rtIds: ["{METER_1}"]
    fromPath: $.since
    to: "2026-03-01T10:00:02+00:00"
    attributes: [voltage]
    targetPath: $.points
  - {{type: GetStreamData@1, ckTypeId: {METER}, take: 1, descending: true, targetPath: $.last}}
"""
    result = _run(body, {"since": "2026-03-01T10:00:00+00:00"}, demo)
    assert result.status == "Completed", result.error
    points = result.output["points"]
    assert [(p["rtId"], p["voltage"]) for p in points] == [(METER_1, 230.0), (METER_1, 231.0)]
    assert points[0]["timeStamp"].startswith("2026-03-01T10:00:00")
    assert len(result.output["last"]) == 1
    assert result.output["last"][0]["voltage"] == 232.0
