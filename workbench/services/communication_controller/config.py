"""What the Communication Controller reads and writes in a tenant: adapter configurations built
from the System.Communication entities, adapter and pipeline states, executions and statistics,
and the cron schedules of PipelineTriggers. Every write goes through the runtime service."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from workbench.errors import NotFound, ValidationError

__all__ = [
    "ADAPTER_TYPE",
    "CONFIGURATION_TYPES",
    "PIPELINE_TYPE",
    "TRIGGER_TYPE",
    "TriggerSchedule",
    "adapter_configuration",
    "changes_configuration",
    "configuration_digest",
    "cron_schedule",
    "pipeline_adapter",
    "record_execution",
    "set_state",
    "trigger_schedules",
]

LIBRARY = "System.Communication"
ADAPTER_TYPE = f"{LIBRARY}/Adapter"
PIPELINE_TYPE = f"{LIBRARY}/Pipeline"
TRIGGER_TYPE = f"{LIBRARY}/PipelineTrigger"
DATAFLOW_TYPE = f"{LIBRARY}/DataFlow"
EXECUTION_TYPE = f"{LIBRARY}/PipelineExecution"
STATISTICS_TYPE = f"{LIBRARY}/PipelineStatistics"
#: changes to entities of these types may change an adapter's configuration
CONFIGURATION_TYPES = frozenset({ADAPTER_TYPE, PIPELINE_TYPE, TRIGGER_TYPE, DATAFLOW_TYPE})
#: the configuration entities pipelines use (MqttBroker, ServiceAccount, ...) derive from it
CONFIGURATION_ENTITY_TYPE = f"{LIBRARY}/ConfigurationEntity"
_PAGE = 10_000


def _now() -> str:
    return datetime.now(UTC).isoformat()


def changes_configuration(tenant: Any, ck_type_id: str) -> bool:
    """True when a change to an entity of ``ck_type_id`` may change an adapter's configuration
    (the System.Communication types above, or a configuration entity a pipeline uses)."""
    if ck_type_id in CONFIGURATION_TYPES:
        return True
    model = tenant.model
    return ck_type_id in model.types and model.is_a(ck_type_id, CONFIGURATION_ENTITY_TYPE)


def require_adapter(tenant: Any, rt_id: str) -> Any:
    """The Adapter entity ``rt_id`` of ``tenant`` (NotFound naming the fix otherwise)."""
    try:
        entity = tenant.entities.get(rt_id)
    except (NotFound, ValidationError):
        entity = None
    if entity is None or entity.ck_type_id != ADAPTER_TYPE:
        raise NotFound(
            f"tenant {tenant.id!r} has no {ADAPTER_TYPE} with rtId {rt_id!r}; create the adapter "
            "entity first (a runtime file, GraphQL, or workbench rt import)"
        )
    return entity


def adapter_configuration(
    tenant: Any, adapter_rt_id: str, *, reveal_secrets: bool = False
) -> dict[str, Any]:
    """The configuration pushed to adapter ``adapter_rt_id``: its ``AdapterConfiguration`` and
    every enabled pipeline it executes (data flow id, definition, debug flag, configuration
    entities it ``Uses``). Secret attributes of those entities are ``***`` unless
    ``reveal_secrets`` (only for the push to the authenticated adapter itself)."""
    adapter = require_adapter(tenant, adapter_rt_id)
    pipelines = []
    for pipeline in tenant.entities.navigate(adapter_rt_id, "pipelines"):
        if pipeline.attributes.get("enabled") is False:
            continue
        parents = tenant.entities.navigate(pipeline.rt_id, "parent")
        uses = tenant.entities.navigate(pipeline.rt_id, "configurations")
        pipelines.append(
            {
                "rtId": pipeline.rt_id,
                "name": pipeline.attributes.get("name") or pipeline.rt_id,
                "dataFlowRtId": parents[0].rt_id if parents else None,
                "definition": pipeline.attributes.get("pipelineDefinition") or "",
                "isDebuggingEnabled": bool(pipeline.attributes.get("isDebuggingEnabled")),
                "configurations": [_configuration_entity(tenant, c, reveal_secrets) for c in uses],
            }
        )
    pipelines.sort(key=lambda p: p["rtId"])
    return {
        "adapterRtId": adapter_rt_id,
        "tenantId": tenant.id,
        "name": adapter.attributes.get("name"),
        "adapterConfiguration": adapter.attributes.get("adapterConfiguration"),
        "pipelines": pipelines,
    }


def _configuration_entity(tenant: Any, entity: Any, reveal_secrets: bool) -> dict[str, Any]:
    # decrypted secrets reach the adapter that uses the entity, never logs or other callers;
    # the change times stay out so that the digest changes only with the content
    view = {
        k: v
        for k, v in entity.to_dict().items()
        if k not in ("rtCreationDateTime", "rtChangedDateTime", "rtVersion")
    }
    if reveal_secrets:
        view.update(tenant.entities.reveal_secrets(entity))
    return view


def configuration_digest(configuration: dict[str, Any]) -> str:
    """A digest telling whether a configuration changed since it was pushed."""
    return hashlib.sha256(
        json.dumps(configuration, sort_keys=True, default=str).encode()
    ).hexdigest()


def set_state(tenant: Any, rt_id: str, **attributes: Any) -> None:
    """Change state attributes (GraphQL names) of an entity; unchanged values are not written."""
    try:
        entity = tenant.entities.get(rt_id)
    except NotFound:
        return
    changed = {k: v for k, v in attributes.items() if entity.attributes.get(k) != v}
    if changed:
        tenant.entities.update(rt_id, changed)


def pipeline_adapter(tenant: Any, pipeline_rt_id: str) -> str:
    """The rtId of the adapter executing pipeline ``pipeline_rt_id``."""
    try:
        pipeline = tenant.entities.get(pipeline_rt_id)
    except NotFound:
        pipeline = None
    if pipeline is None or pipeline.ck_type_id != PIPELINE_TYPE:
        raise NotFound(f"tenant {tenant.id!r} has no {PIPELINE_TYPE} with rtId {pipeline_rt_id!r}")
    adapters = tenant.entities.navigate(pipeline_rt_id, "adapter")
    if not adapters:
        raise ValidationError(
            f"pipeline {pipeline_rt_id} is executed by no adapter; link it to one "
            f"({LIBRARY}/Executes)"
        )
    return str(adapters[0].rt_id)


def record_execution(tenant: Any, adapter_rt_id: str, result: dict[str, Any]) -> str:
    """Store one run as a PipelineExecution (input/output only when debugging) and refresh the
    pipeline's PipelineStatistics; returns the execution's rtId."""
    pipeline_rt_id = result["pipelineRtId"]
    attributes: dict[str, Any] = {
        "executionId": result["executionId"],
        "status": result["status"],
        "triggerType": result.get("triggerType") or "Manual",
        "startedAt": result["startedAt"],
        "completedAt": result.get("completedAt"),
        "durationMs": float(result.get("durationMs") or 0.0),
        "errorMessage": result.get("error"),
    }
    if result.get("debug"):
        attributes["inputData"] = json.dumps(result.get("input"), default=str)
        attributes["outputData"] = json.dumps(result.get("output"), default=str)
    links = [("executedPipeline", pipeline_rt_id), ("executingAdapter", adapter_rt_id)]
    entity = tenant.entities.create(EXECUTION_TYPE, attributes, associations=links)
    _refresh_statistics(tenant, pipeline_rt_id)
    return str(entity.rt_id)


_WINDOWS = {
    "LastHour": timedelta(hours=1),
    "Last12Hours": timedelta(hours=12),
    "Last24Hours": timedelta(hours=24),
    "Last30Days": timedelta(days=30),
}


def _refresh_statistics(tenant: Any, pipeline_rt_id: str) -> None:
    now = datetime.now(UTC)
    since = (now - _WINDOWS["Last30Days"]).isoformat()
    runs = tenant.entities.find(
        EXECUTION_TYPE,
        where=[
            {
                "attributePath": "executedPipeline->rtId",
                "operator": "EQUALS",
                "comparisonValue": pipeline_rt_id,
            },
            {
                "attributePath": "startedAt",
                "operator": "GREATER_EQUAL_THAN",
                "comparisonValue": since,
            },
        ],
        first=_PAGE,
    ).items
    values: dict[str, Any] = {}
    for suffix, window in _WINDOWS.items():
        edge = now - window
        inside = [r for r in runs if _time(r.attributes.get("startedAt")) >= edge]
        done = [r for r in inside if r.attributes.get("status") == "Completed"]
        failed = [r for r in inside if r.attributes.get("status") == "Failed"]
        durations = [float(r.attributes.get("durationMs") or 0) for r in inside]
        values[f"successCount{suffix}"] = len(done)
        values[f"failureCount{suffix}"] = len(failed)
        values[f"averageDurationMs{suffix}"] = sum(durations) / len(durations) if durations else 0.0
    existing = tenant.entities.navigate(pipeline_rt_id, "statistics")
    if existing:
        tenant.entities.update(existing[0].rt_id, values)
    else:
        tenant.entities.create(
            STATISTICS_TYPE, values, associations=[("statisticsOf", pipeline_rt_id)]
        )


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cron_schedule(expression: str, start: datetime | None = None) -> croniter:
    """A croniter for a CronExpression: 5 fields standard cron, 6 fields seconds first (``?``
    accepted, as in Quartz and Hangfire: ``0 * * * * ?`` fires every minute)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValidationError(
            f"cron expression {expression!r} has {len(fields)} fields; give 5 (minute hour day "
            "month weekday) or 6 (seconds first), e.g. '0 * * * * ?' for every minute"
        )
    text = " ".join("*" if f == "?" else f for f in fields)
    try:
        return croniter(text, start or datetime.now(UTC), second_at_beginning=len(fields) == 6)
    except (ValueError, KeyError) as exc:
        raise ValidationError(f"cron expression {expression!r} is invalid: {exc}") from exc


@dataclass
class TriggerSchedule:
    """An enabled PipelineTrigger: its pipeline and the next time it fires."""

    trigger_rt_id: str
    pipeline_rt_id: str
    expression: str
    next_fire: datetime


def trigger_schedules(tenant: Any) -> list[TriggerSchedule]:
    """The enabled PipelineTriggers of ``tenant`` with their next fire times (bad expressions
    are skipped and their error stored in the trigger's LastDeploymentError)."""
    out = []
    for trigger in tenant.entities.find(TRIGGER_TYPE, first=_PAGE).items:
        if trigger.attributes.get("enabled") is False:
            continue
        targets = tenant.entities.navigate(trigger.rt_id, "triggeredPipeline")
        if not targets:
            continue
        expression = str(trigger.attributes.get("cronExpression") or "")
        try:
            schedule = cron_schedule(expression)
        except ValidationError as exc:
            set_state(
                tenant,
                trigger.rt_id,
                deploymentState="Error",
                lastDeploymentError=str(exc),
                lastDeploymentErrorTimestamp=_now(),
            )
            continue
        next_fire = schedule.get_next(datetime)
        out.append(TriggerSchedule(trigger.rt_id, targets[0].rt_id, expression, next_fire))
    return out
