"""The adapter hub of the Communication Controller: the WebSocket protocol with adapters,
their online and configuration states, configuration pushes, cron triggers and executions.

Protocol (JSON text frames on ``/tenants/{tenantId}/adapters/hub``):

- adapter → ``{"type": "register", "adapterRtId", "nodes": {Name@Version: schema}}`` first;
  the controller answers ``registered`` (with ``heartbeatSeconds``), sets
  ``CommunicationState=Online`` and pushes ``configuration`` (``version``, the adapter's
  ``adapterConfiguration`` and ``pipelines``) with ``ConfigurationState=Pending``;
- adapter → ``configurationAck`` (``version``, ``errors``: ``pipelineRtId``, ``category``
  initialization/deserialization/trigger, ``message``) → ``Configured`` or ``Error``;
- adapter → ``heartbeat`` every ``heartbeatSeconds``; none for ``offline_after`` → ``Offline``;
  an edge adapter adds ``lastSyncedSequenceNumber`` (to ``register`` too), stored on the Adapter;
- controller → ``executePipeline`` (``executionId``, ``pipelineRtId``, ``triggerType``,
  ``input``); adapter → ``executionResult`` for every run it makes (recorded as
  PipelineExecution, counted in PipelineStatistics).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from workbench.communication.commands import CONTROLLER_GROUP, EXECUTE_PIPELINE, commands_topic
from workbench.errors import Conflict, NotFound, SecretKeyError, ValidationError, WorkbenchError
from workbench.messaging.base import EntityEvent, MessageBus, entity_topic, new_message_id
from workbench.services.communication_controller.config import (
    TriggerSchedule,
    adapter_configuration,
    changes_configuration,
    configuration_digest,
    cron_schedule,
    pipeline_adapter,
    record_execution,
    require_adapter,
    set_state,
    trigger_schedules,
)

__all__ = ["AdapterHub", "AdapterSession"]

log = logging.getLogger("workbench.services.communication_controller.app")


@dataclass
class AdapterSession:
    """One connected adapter."""

    tenant: Any
    adapter_rt_id: str
    websocket: WebSocket
    nodes: set[str]
    last_heartbeat: float = field(default_factory=time.monotonic)
    version: int = 0
    digest: str = ""
    pipelines: list[str] = field(default_factory=list)
    #: the edge adapter's LastSyncedSequenceNumber as last stored
    synced: int | None = None
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_text(json.dumps(message, default=str))


class AdapterHub:
    """Connected adapters of every tenant, and the loops that watch them."""

    def __init__(
        self,
        bus: MessageBus,
        *,
        heartbeat_seconds: float = 5.0,
        offline_after_seconds: float = 15.0,
        metrics: Any = None,
    ) -> None:
        self.bus = bus
        self.heartbeat_seconds = heartbeat_seconds
        self.offline_after_seconds = offline_after_seconds
        self.metrics = metrics
        self.sessions: dict[tuple[str, str], AdapterSession] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._schedules: dict[str, list[TriggerSchedule]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watchdog(), name="adapter-watchdog"),
            asyncio.create_task(self._cron(), name="pipeline-triggers"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._watchers.values()]:
            task.cancel()
        for task in [*self._tasks, *self._watchers.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for session in list(self.sessions.values()):
            await self._offline(session, "the controller stopped")

    # ---- the protocol

    async def serve(self, websocket: WebSocket, tenant: Any) -> None:
        """Run one adapter's session until it disconnects or misses its heartbeat deadline."""
        first = await websocket.receive_json()
        if not isinstance(first, dict) or first.get("type") != "register":
            await _refuse(websocket, "the first message must be {'type': 'register', ...}")
            return
        adapter_rt_id = str(first.get("adapterRtId") or "")
        try:
            await asyncio.to_thread(require_adapter, tenant, adapter_rt_id)
        except NotFound as exc:
            await _refuse(websocket, str(exc))
            return
        key = (tenant.id, adapter_rt_id)
        previous = self.sessions.get(key)
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous.websocket.close(4409, "replaced by a new connection")
        session = AdapterSession(tenant, adapter_rt_id, websocket, set(first.get("nodes") or {}))
        self.sessions[key] = session
        self._watch(tenant)
        await asyncio.to_thread(
            set_state,
            tenant,
            adapter_rt_id,
            communicationState="Online",
            communicationStateTimestamp=_now(),
        )
        await self._synced(session, first)
        self._count_online()
        log.info("adapter online", extra={"tenant": tenant.id, "adapter": adapter_rt_id})
        await session.send({"type": "registered", "heartbeatSeconds": self.heartbeat_seconds})
        await self.push(session, force=True)
        try:
            while True:
                message = await websocket.receive_json()
                await self._handle(session, message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self.sessions.get(key) is session:
                await self._offline(session, "disconnected")

    async def _handle(self, session: AdapterSession, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        session.last_heartbeat = time.monotonic()
        if kind == "heartbeat":
            await self._synced(session, message)
            return
        if kind == "configurationAck":
            await self._acknowledged(session, message)
        elif kind == "executionResult":
            await self._executed(session, message)
        else:
            await session.send({"type": "error", "message": f"unknown message type {kind!r}"})

    async def _synced(self, session: AdapterSession, message: dict[str, Any]) -> None:
        """Store an edge adapter's ``lastSyncedSequenceNumber`` when it moved."""
        synced = message.get("lastSyncedSequenceNumber")
        if not isinstance(synced, int) or synced == session.synced:
            return
        session.synced = synced
        await asyncio.to_thread(
            set_state, session.tenant, session.adapter_rt_id, lastSyncedSequenceNumber=synced
        )

    async def _acknowledged(self, session: AdapterSession, message: dict[str, Any]) -> None:
        if message.get("version") != session.version:
            return  # an answer to a configuration that was replaced meanwhile
        errors = message.get("errors") or []
        failed = {e.get("pipelineRtId"): e for e in errors}
        text = "; ".join(
            f"{e.get('pipelineRtId')}: {e.get('category', 'initialization')}: {e.get('message')}"
            for e in errors
        )

        def store() -> None:
            set_state(
                session.tenant,
                session.adapter_rt_id,
                configurationState="Error" if errors else "Configured",
                lastConfigurationError=text or None,
            )
            for rt_id in session.pipelines:
                error = failed.get(rt_id)
                if error is None:
                    set_state(session.tenant, rt_id, deploymentState="Deployed")
                else:
                    set_state(
                        session.tenant,
                        rt_id,
                        deploymentState="Error",
                        lastDeploymentError=f"{error.get('category')}: {error.get('message')}",
                        lastDeploymentErrorTimestamp=_now(),
                    )

        await asyncio.to_thread(store)

    async def _executed(self, session: AdapterSession, message: dict[str, Any]) -> None:
        waiting = session.waiting.pop(str(message.get("executionId")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(message)
        if self.metrics is not None:
            self.metrics.pipeline_run(message.get("status"), message.get("durationMs"))
        try:
            await asyncio.to_thread(
                record_execution, session.tenant, session.adapter_rt_id, message
            )
        except (WorkbenchError, KeyError) as exc:
            log.warning("execution not recorded", extra={"error": str(exc)})

    # ---- configuration

    async def push(self, session: AdapterSession, *, force: bool = False) -> bool:
        """Send the adapter its configuration when it changed (or ``force``)."""
        try:
            configuration = await asyncio.to_thread(
                adapter_configuration, session.tenant, session.adapter_rt_id, reveal_secrets=True
            )
        except NotFound as exc:
            await _refuse(session.websocket, str(exc))
            return False
        except SecretKeyError as exc:  # the adapter cannot run without its secrets
            log.error("configuration not pushed", extra={"error": exc.message})
            await asyncio.to_thread(
                set_state,
                session.tenant,
                session.adapter_rt_id,
                configurationState="Error",
                lastConfigurationError=exc.message,
            )
            return False
        digest = configuration_digest(configuration)
        if digest == session.digest and not force:
            return False
        session.version += 1
        session.digest = digest
        session.pipelines = [p["rtId"] for p in configuration["pipelines"]]

        def pending() -> None:
            set_state(session.tenant, session.adapter_rt_id, configurationState="Pending")
            for rt_id in session.pipelines:
                set_state(session.tenant, rt_id, deploymentState="Pending")

        await asyncio.to_thread(pending)
        await session.send({"type": "configuration", "version": session.version, **configuration})
        log.info(
            "configuration pushed",
            extra={
                "adapter": session.adapter_rt_id,
                "version": session.version,
                "pipelines": len(session.pipelines),
            },
        )
        return True

    async def push_tenant(self, tenant_id: str) -> None:
        for (tid, _), session in list(self.sessions.items()):
            if tid == tenant_id:
                with contextlib.suppress(WorkbenchError, RuntimeError):
                    await self.push(session)

    def _watch(self, tenant: Any) -> None:
        """Follow the tenant's entity events: a change of an adapter, data flow, pipeline or
        trigger re-pushes configurations and reloads the cron schedules."""
        if tenant.id in self._watchers:
            return
        self._watchers[tenant.id] = asyncio.create_task(self._follow(tenant))
        self._tasks.append(
            asyncio.create_task(self._take_commands(tenant), name=f"commands-{tenant.id}")
        )

    async def _take_commands(self, tenant: Any) -> None:
        """Carry out the commands of the tenant's GraphQL mutations (workbench.communication.
        commands); a failed execute is recorded as a Failed PipelineExecution."""
        consumer = self.bus.consume(commands_topic(tenant.id), "#", group=CONTROLLER_GROUP)
        async with consumer:
            async for delivery in consumer:
                body = delivery.body if isinstance(delivery.body, dict) else {}
                try:
                    await self.run_command(tenant, body)
                except WorkbenchError as exc:
                    log.warning("command failed", extra={"command": body, "error": str(exc)})
                await delivery.ack()

    async def run_command(self, tenant: Any, command: dict[str, Any]) -> None:
        """One command of :mod:`workbench.communication.commands`."""
        kind, rt_id = command.get("type"), str(command.get("rtId") or "")
        if kind == EXECUTE_PIPELINE:
            try:
                await self.execute(
                    tenant, rt_id, command.get("input"), execution_id=command.get("executionId")
                )
            except WorkbenchError as exc:
                now = _now()
                adapters = command.get("adapterRtIds") or [""]
                failed = {
                    "pipelineRtId": rt_id,
                    "executionId": command.get("executionId") or new_message_id(),
                    "status": "Failed",
                    "triggerType": "Manual",
                    "startedAt": now,
                    "completedAt": now,
                    "error": exc.message,
                }
                await asyncio.to_thread(record_execution, tenant, adapters[0], failed)
            return
        for adapter_rt_id in command.get("adapterRtIds") or []:
            session = self.sessions.get((tenant.id, adapter_rt_id))
            if session is not None:
                await self.push(session, force=True)

    async def _follow(self, tenant: Any) -> None:
        subscription = self.bus.subscribe(entity_topic(tenant.id), "#")
        await self.reload_schedules(tenant)
        try:
            async for event in subscription:
                if isinstance(event, EntityEvent) and changes_configuration(
                    tenant, event.ck_type_id
                ):
                    await asyncio.sleep(0.05)  # let a batch of changes land first
                    await self.push_tenant(tenant.id)
                    await self.reload_schedules(tenant)
        finally:
            await subscription.close()

    async def reload_schedules(self, tenant: Any) -> list[TriggerSchedule]:
        """Load the tenant's enabled PipelineTriggers (the cron loop fires them)."""
        try:
            self._schedules[tenant.id] = await asyncio.to_thread(trigger_schedules, tenant)
        except WorkbenchError as exc:
            log.warning("cannot load pipeline triggers", extra={"error": str(exc)})
        return list(self._schedules.get(tenant.id, []))

    # ---- executions

    async def execute(
        self,
        tenant: Any,
        pipeline_rt_id: str,
        input: Any = None,
        *,
        trigger_type: str = "Manual",
        wait: float | None = None,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask the pipeline's adapter to run it; with ``wait``, the execution result."""
        adapter_rt_id = await asyncio.to_thread(pipeline_adapter, tenant, pipeline_rt_id)
        session = self.sessions.get((tenant.id, adapter_rt_id))
        if session is None:
            raise Conflict(
                f"adapter {adapter_rt_id} of pipeline {pipeline_rt_id} is not connected; start "
                f"it: workbench adapter run --tenant {tenant.id} --adapter {adapter_rt_id}"
            )
        execution_id = execution_id or new_message_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if wait:
            session.waiting[execution_id] = future
        await session.send(
            {
                "type": "executePipeline",
                "executionId": execution_id,
                "pipelineRtId": pipeline_rt_id,
                "triggerType": trigger_type,
                "input": input if input is not None else {},
            }
        )
        if not wait:
            return {"executionId": execution_id, "adapterRtId": adapter_rt_id, "status": "Sent"}
        try:
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            session.waiting.pop(execution_id, None)
            raise ValidationError(
                f"pipeline {pipeline_rt_id} did not finish within {wait} s; see its executions"
            ) from None

    async def _cron(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = datetime.now(UTC)
            for tenant_id, schedules in list(self._schedules.items()):
                for schedule in schedules:
                    if schedule.next_fire > now:
                        continue
                    schedule.next_fire = cron_schedule(schedule.expression, now).get_next(datetime)
                    session_tenant = next(
                        (s.tenant for (t, _), s in self.sessions.items() if t == tenant_id), None
                    )
                    if session_tenant is None:
                        continue
                    with contextlib.suppress(WorkbenchError, RuntimeError):
                        await self.execute(
                            session_tenant, schedule.pipeline_rt_id, {}, trigger_type="Scheduled"
                        )

    # ---- online state

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.offline_after_seconds / 4))
            deadline = time.monotonic() - self.offline_after_seconds
            for session in list(self.sessions.values()):
                if session.last_heartbeat < deadline:
                    await self._offline(session, "missed its heartbeat deadline")
                    with contextlib.suppress(Exception):
                        await session.websocket.close(4408, "heartbeat deadline missed")

    async def _offline(self, session: AdapterSession, reason: str) -> None:
        key = (session.tenant.id, session.adapter_rt_id)
        if self.sessions.get(key) is session:
            del self.sessions[key]
        for future in session.waiting.values():
            if not future.done():
                future.set_exception(Conflict(f"adapter {session.adapter_rt_id} went away"))
        with contextlib.suppress(WorkbenchError):
            await asyncio.to_thread(
                set_state,
                session.tenant,
                session.adapter_rt_id,
                communicationState="Offline",
                communicationStateTimestamp=_now(),
            )
        self._count_online()
        log.info("adapter offline", extra={"adapter": session.adapter_rt_id, "reason": reason})

    def _count_online(self) -> None:
        if self.metrics is not None:
            self.metrics.adapters_online.set(len(self.sessions))


async def _refuse(websocket: WebSocket, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "message": message}))
        await websocket.close(4404, message[:120])


def _now() -> str:
    return datetime.now(UTC).isoformat()
