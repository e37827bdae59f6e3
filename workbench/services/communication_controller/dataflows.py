"""Data-flow and trigger routes of the Communication Controller: a data flow's status (its
pipelines, their adapters and states, its triggers), deploying a whole data flow (pushing the
configuration to every connected adapter of its pipelines) and reloading the cron triggers."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from workbench.errors import NotFound
from workbench.services.access import EntityWriteAccess, ReadAccess
from workbench.services.communication_controller.config import (
    DATAFLOW_TYPE,
    PIPELINE_TYPE,
    TRIGGER_TYPE,
)

__all__ = ["dataflow_status", "router"]

router = APIRouter(tags=["communication"])


def dataflow_status(tenant: Any, rt_id: str) -> dict[str, Any]:
    """The data flow ``rt_id`` with its pipelines (adapter, states) and triggers."""
    try:
        flow = tenant.entities.get(rt_id)
    except NotFound:
        flow = None
    if flow is None or flow.ck_type_id != DATAFLOW_TYPE:
        raise NotFound(f"tenant {tenant.id!r} has no {DATAFLOW_TYPE} with rtId {rt_id!r}")
    pipelines, triggers = [], []
    for child in tenant.entities.navigate(rt_id, "children"):
        if child.ck_type_id == PIPELINE_TYPE:
            adapters = tenant.entities.navigate(child.rt_id, "adapter")
            adapter = adapters[0] if adapters else None
            pipelines.append(
                {
                    "rtId": child.rt_id,
                    "name": child.attributes.get("name"),
                    "enabled": child.attributes.get("enabled"),
                    "deploymentState": child.attributes.get("deploymentState") or "Undeployed",
                    "lastDeploymentError": child.attributes.get("lastDeploymentError"),
                    "adapterRtId": adapter.rt_id if adapter else None,
                    "communicationState": adapter.attributes.get("communicationState")
                    if adapter
                    else None,
                    "configurationState": adapter.attributes.get("configurationState")
                    if adapter
                    else None,
                }
            )
        elif child.ck_type_id == TRIGGER_TYPE:
            targets = tenant.entities.navigate(child.rt_id, "triggeredPipeline")
            triggers.append(
                {
                    "rtId": child.rt_id,
                    "name": child.attributes.get("name"),
                    "enabled": child.attributes.get("enabled"),
                    "cronExpression": child.attributes.get("cronExpression"),
                    "pipelineRtId": targets[0].rt_id if targets else None,
                }
            )
    return {
        "rtId": rt_id,
        "name": flow.attributes.get("name"),
        "pipelines": pipelines,
        "triggers": triggers,
    }


@router.get("/tenants/{tenantId}/dataflows/{rtId}")
async def show_dataflow(access: ReadAccess, rtId: str) -> dict[str, Any]:
    """A data flow's pipelines (with their adapters' states) and triggers."""
    return await asyncio.to_thread(dataflow_status, access.tenant, rtId)


@router.post("/tenants/{tenantId}/dataflows/{rtId}/deploy")
async def deploy_dataflow(access: EntityWriteAccess, request: Request, rtId: str) -> dict[str, Any]:
    """Push the configuration to every connected adapter of the data flow's pipelines; the
    adapters not connected are listed (they get it when they connect)."""
    hub = request.app.state.service.hub
    status = await asyncio.to_thread(dataflow_status, access.tenant, rtId)
    pushed, waiting = [], []
    for adapter_rt_id in sorted(
        {p["adapterRtId"] for p in status["pipelines"] if p["adapterRtId"]}
    ):
        session = hub.sessions.get((access.tenant.id, adapter_rt_id))
        if session is None:
            waiting.append(adapter_rt_id)
        else:
            await hub.push(session, force=True)
            pushed.append(adapter_rt_id)
    return {"rtId": rtId, "pushedTo": pushed, "notConnected": waiting}


@router.post("/tenants/{tenantId}/triggers/deploy")
async def deploy_triggers(access: EntityWriteAccess, request: Request) -> list[dict[str, Any]]:
    """Reload the tenant's PipelineTriggers now; their next fire times."""
    hub = request.app.state.service.hub
    schedules = await hub.reload_schedules(access.tenant)
    return [
        {
            "triggerRtId": s.trigger_rt_id,
            "pipelineRtId": s.pipeline_rt_id,
            "cronExpression": s.expression,
            "nextFire": s.next_fire.isoformat(),
        }
        for s in schedules
    ]
