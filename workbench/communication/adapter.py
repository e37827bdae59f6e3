"""The adapter runtime: ``workbench adapter run --tenant T --adapter RTID [--edge]``.

It connects to the Communication Controller's hub (WebSocket, bearer token), registers with the
nodes it supports and their schemas, receives its configuration, builds the pipelines, starts
their triggers, runs executions the controller asks for, sends heartbeats and reports every
execution. A new configuration replaces the running pipelines in place (no restart); a lost
connection is retried with backoff while the pipelines keep running. Entity and stream writes go
through the tenant API it is given (the Asset Repository over HTTP, or an in-process tenant);
data events between pipelines go over the tenant's bus.

An edge adapter (``edge=EdgeState(...)``, its bus an
:class:`~workbench.communication.outbox.OutboxBus`) keeps working without the mesh: it runs the
configuration it was last given until the controller answers again, every message goes through
its outbox, and it reports how far the platform has its data (``lastSyncedSequenceNumber`` in
``register`` and every ``heartbeat``; the controller stores it as the Adapter's
``LastSyncedSequenceNumber``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.communication.definition import parse_pipeline
from workbench.communication.errors import PipelineDefinitionError
from workbench.communication.executor import ExecutionResult, Pipeline, build_pipeline
from workbench.communication.node import ExecutionEnvironment, Fire
from workbench.communication.outbox import OutboxBus
from workbench.communication.registry import NodeRegistry, default_registry
from workbench.errors import WorkbenchError
from workbench.messaging.base import MessageBus, dataflow_topic

if TYPE_CHECKING:
    from workbench.communication.edge import EdgeState

__all__ = ["AdapterRuntime", "DeployedPipeline", "hub_url"]

log = logging.getLogger("workbench.communication.adapter")

#: results kept while the controller is unreachable (oldest dropped beyond this)
MAX_UNSENT_RESULTS = 1000


def hub_url(controller_url: str, tenant_id: str) -> str:
    """``http://host:5015`` → ``ws://host:5015/tenants/<tenant>/adapters/hub``."""
    base = controller_url.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[len("http") :]
    return f"{base}/tenants/{tenant_id}/adapters/hub"


@dataclass
class DeployedPipeline:
    """A pipeline this adapter runs: its configuration, node objects and trigger tasks."""

    rt_id: str
    name: str
    data_flow_rt_id: str | None
    debug: bool
    configurations: list[dict[str, Any]]
    pipeline: Pipeline
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class _PipelineHost:
    """The :class:`~workbench.communication.node.TriggerHost` of one deployed pipeline."""

    def __init__(self, runtime: AdapterRuntime, deployed: DeployedPipeline) -> None:
        self.runtime = runtime
        self.tenant_id = runtime.tenant_id
        self.pipeline_rt_id = deployed.rt_id
        self.data_flow_rt_id = deployed.data_flow_rt_id

    def subscribe(self, topic: str, pattern: str) -> Any:
        return self.runtime.bus.subscribe(topic, pattern)

    def consume(self, topic: str, pattern: str, group: str) -> Any:
        return self.runtime.bus.consume(topic, pattern, group=group)

    def add_http_route(self, method: str, path: str, fire: Fire) -> None:
        if self.runtime.http_port is None:
            raise WorkbenchError(
                f"FromHttpRequest@1 ({method} {path}) needs the adapter's HTTP endpoint: start "
                "it with workbench adapter run --http-port PORT"
            )
        self.runtime.http_routes[(method, path)] = fire


class AdapterRuntime:
    """One adapter process's work (see the module docstring)."""

    def __init__(
        self,
        *,
        controller_url: str,
        tenant_id: str,
        adapter_rt_id: str,
        tenant: Any,
        bus: MessageBus,
        token: str | None = None,
        registry: NodeRegistry | None = None,
        token_provider: Callable[[], str | None] | None = None,
        http_port: int | None = None,
        http_host: str = "127.0.0.1",
        edge: EdgeState | None = None,
    ) -> None:
        self.controller_url = controller_url
        self.tenant_id = tenant_id
        self.adapter_rt_id = adapter_rt_id
        self.tenant = tenant
        self.bus = bus
        self.registry = registry or default_registry()
        self._token = token
        self._token_provider = token_provider
        self.pipelines: dict[str, DeployedPipeline] = {}
        self.http_routes: dict[tuple[str, str], Fire] = {}
        self.http_port = http_port
        self.http_host = http_host
        self.configuration_version = 0
        self.adapter_configuration: Any = None
        self._unsent: list[dict[str, Any]] = []
        self._send: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self._groups: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        self.configured = asyncio.Event()
        self.edge = edge
        if edge is not None and not isinstance(bus, OutboxBus):
            raise WorkbenchError("an edge adapter's bus must be an OutboxBus (EdgeState.open_bus)")

    @property
    def last_synced_sequence(self) -> int | None:
        """How far the platform has this adapter's outbox (None: no outbox)."""
        if isinstance(self.bus, OutboxBus):
            return self.bus.outbox.delivered_sequence
        return None

    # ---- connection

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Stay connected to the controller until ``stop`` is set (reconnecting with backoff)."""
        stop = stop or asyncio.Event()
        http: asyncio.Task[None] | None = None
        if self.http_port is not None:
            from workbench.communication.http_trigger import serve_http_triggers

            http = asyncio.create_task(
                serve_http_triggers(
                    self.tenant_id, self.http_routes, self.http_host, self.http_port
                )
            )
        deliverer: asyncio.Task[None] | None = None
        if isinstance(self.bus, OutboxBus):
            deliverer = asyncio.create_task(self.bus.run(stop))
        try:
            if self.edge is not None and not self.pipelines:
                cached = self.edge.load_configuration()
                if cached is not None:  # run what it was last given until the controller answers
                    log.info(
                        "running the last configuration", extra={"version": cached.get("version")}
                    )
                    await self.configure(cached, keep=False)
            await self._stay_connected(stop)
        finally:
            await self.undeploy_all()
            for task in (deliverer, http):
                if task is not None and not task.done() and (task is http or not stop.is_set()):
                    task.cancel()
            for task in (deliverer, http):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _stay_connected(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await self._connect(stop)
                delay = 0.2
            except (OSError, WorkbenchError) as exc:
                log.warning("controller unreachable", extra={"error": str(exc), "retryIn": delay})
            except Exception as exc:  # websockets' own errors: closed, refused handshake
                log.warning("controller connection lost", extra={"error": repr(exc)})
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10.0)

    async def _connect(self, stop: asyncio.Event) -> None:
        import websockets

        token = self._token_provider() if self._token_provider else self._token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = hub_url(self.controller_url, self.tenant_id)
        async with websockets.connect(url, additional_headers=headers, max_size=2**24) as ws:
            lock = asyncio.Lock()

            async def send(message: dict[str, Any]) -> None:
                async with lock:
                    await ws.send(json.dumps(message, default=str))

            await send(
                {
                    "type": "register",
                    "adapterRtId": self.adapter_rt_id,
                    "nodes": self.registry.schemas(),
                    **self._sync_state(),
                }
            )
            heartbeat: asyncio.Task[None] | None = None
            stopper = asyncio.create_task(stop.wait())
            try:
                while True:
                    receive = asyncio.create_task(ws.recv())
                    done, _ = await asyncio.wait(
                        {receive, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopper in done:
                        receive.cancel()
                        return
                    message = json.loads(receive.result())
                    kind = message.get("type")
                    if kind == "registered":
                        self._send = send
                        interval = float(message.get("heartbeatSeconds") or 5.0)
                        heartbeat = asyncio.create_task(self._heartbeat(send, interval))
                        await self._flush()
                    elif kind == "configuration":
                        errors = await self.configure(message)
                        await send(
                            {
                                "type": "configurationAck",
                                "version": message.get("version"),
                                "errors": errors,
                            }
                        )
                    elif kind == "executePipeline":
                        task = asyncio.create_task(self._execute_command(message))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
                    elif kind == "error":
                        raise WorkbenchError(f"the controller refused: {message.get('message')}")
            finally:
                self._send = None
                stopper.cancel()
                if heartbeat is not None:
                    heartbeat.cancel()

    async def _heartbeat(
        self, send: Callable[[dict[str, Any]], Awaitable[None]], interval: float
    ) -> None:
        while True:
            await asyncio.sleep(interval)
            await send({"type": "heartbeat", **self._sync_state()})

    def _sync_state(self) -> dict[str, Any]:
        synced = self.last_synced_sequence
        return {} if synced is None else {"lastSyncedSequenceNumber": synced}

    async def _report(self, message: dict[str, Any]) -> None:
        if self._send is None:
            self._unsent = [*self._unsent, message][-MAX_UNSENT_RESULTS:]
            return
        try:
            await self._send(message)
        except Exception:
            self._unsent = [*self._unsent, message][-MAX_UNSENT_RESULTS:]

    async def _flush(self) -> None:
        pending, self._unsent = self._unsent, []
        for message in pending:
            await self._report(message)

    # ---- configuration

    async def configure(
        self, message: dict[str, Any], *, keep: bool = True
    ) -> list[dict[str, Any]]:
        """Replace the running pipelines with those of ``message``; per-pipeline errors.
        An edge adapter keeps ``message`` (``keep``) to run it again after a restart."""
        if keep and self.edge is not None:
            await asyncio.to_thread(self.edge.save_configuration, message)
        errors: list[dict[str, Any]] = []
        await self.undeploy_all()
        self.configuration_version = int(message.get("version") or 0)
        self.adapter_configuration = message.get("adapterConfiguration")
        for item in message.get("pipelines") or []:
            rt_id, name = item["rtId"], item.get("name") or item["rtId"]
            try:
                definition = parse_pipeline(
                    item.get("definition") or "", name=name, registry=self.registry
                )
            except PipelineDefinitionError as exc:
                errors.append(
                    {"pipelineRtId": rt_id, "category": "deserialization", "message": str(exc)}
                )
                continue
            try:
                pipeline = build_pipeline(definition, registry=self.registry)
            except WorkbenchError as exc:
                errors.append(
                    {"pipelineRtId": rt_id, "category": "initialization", "message": str(exc)}
                )
                continue
            deployed = DeployedPipeline(
                rt_id,
                name,
                item.get("dataFlowRtId"),
                bool(item.get("isDebuggingEnabled")),
                list(item.get("configurations") or []),
                pipeline,
            )
            self.pipelines[rt_id] = deployed
            error = await self._start_triggers(deployed)
            if error:
                errors.append({"pipelineRtId": rt_id, "category": "trigger", "message": error})
        log.info(
            "configured",
            extra={
                "version": self.configuration_version,
                "pipelines": len(self.pipelines),
                "errors": len(errors),
            },
        )
        self.configured.set()
        return errors

    async def _start_triggers(self, deployed: DeployedPipeline) -> str | None:
        host = _PipelineHost(self, deployed)
        for trigger in deployed.pipeline.triggers:
            fire = self._fire_for(deployed)
            task = asyncio.create_task(self._trigger(deployed, trigger, host, fire))
            deployed.tasks.append(task)
        await asyncio.sleep(0)  # let triggers register (bus groups, routes) before the ack
        failed = [t for t in deployed.tasks if t.done() and t.exception() is not None]
        return str(failed[0].exception()) if failed else None

    async def _trigger(
        self, deployed: DeployedPipeline, trigger: Any, host: Any, fire: Fire
    ) -> None:
        try:
            await trigger.start(host, fire)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "trigger %s of pipeline %r failed: %s", trigger.type_name, deployed.name, exc
            )
            raise

    def _fire_for(self, deployed: DeployedPipeline) -> Fire:
        async def fire(data: Any, trigger_type: str) -> ExecutionResult | None:
            try:
                return await self.execute(deployed.rt_id, data, trigger_type)
            except Exception as exc:  # one failed run must not stop the trigger
                log.exception("execution of %r failed: %s", deployed.name, exc)
                return None

        return fire

    async def undeploy_all(self) -> None:
        tasks = [t for p in self.pipelines.values() for t in p.tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for deployed in self.pipelines.values():  # their connections (MQTT, Modbus, OPC UA)
            await deployed.pipeline.aclose()
        self.pipelines.clear()
        self.http_routes.clear()

    # ---- executions

    async def _execute_command(self, message: dict[str, Any]) -> None:
        rt_id = str(message.get("pipelineRtId"))
        if rt_id not in self.pipelines:
            await self._report(
                {
                    "type": "executionResult",
                    "executionId": message.get("executionId"),
                    "pipelineRtId": rt_id,
                    "status": "Failed",
                    "triggerType": message.get("triggerType"),
                    "startedAt": _now(),
                    "completedAt": _now(),
                    "durationMs": 0.0,
                    "error": f"pipeline {rt_id} is not deployed on adapter {self.adapter_rt_id}",
                }
            )
            return
        await self.execute(
            rt_id,
            message.get("input"),
            message.get("triggerType") or "Manual",
            execution_id=message.get("executionId"),
        )

    async def execute(
        self, rt_id: str, data: Any, trigger_type: str, *, execution_id: str | None = None
    ) -> ExecutionResult:
        """Run deployed pipeline ``rt_id`` once and report the result to the controller."""
        from workbench.messaging.base import new_message_id

        deployed = self.pipelines[rt_id]
        env = ExecutionEnvironment(
            pipeline_name=deployed.name,
            pipeline_rt_id=rt_id,
            data_flow_rt_id=deployed.data_flow_rt_id,
            adapter_rt_id=self.adapter_rt_id,
            tenant_id=self.tenant_id,
            tenant=self.tenant,
            send_data_event=self._sender(deployed),
            configurations=list(deployed.configurations),
            debug=deployed.debug,
        )
        result = await deployed.pipeline.execute(data, env)
        report = {
            "type": "executionResult",
            "executionId": execution_id or new_message_id(),
            "pipelineRtId": rt_id,
            "triggerType": trigger_type,
            "status": result.status,
            "startedAt": result.started_at.isoformat(),
            "completedAt": result.completed_at.isoformat(),
            "durationMs": result.duration_ms,
            "error": result.error,
            "debug": deployed.debug,
        }
        if deployed.debug:
            report.update(input=result.input, output=result.output, trace=result.trace)
        await self._report(report)
        return result

    def _sender(self, deployed: DeployedPipeline) -> Callable[[str, Any], Awaitable[None]] | None:
        data_flow = deployed.data_flow_rt_id
        if data_flow is None:
            return None
        topic = dataflow_topic(data_flow)

        async def send(target: str, data: Any) -> None:
            group = f"pipeline-{target}"
            if group not in self._groups:
                # the receiver's queue exists from now on, even while its adapter is away
                await self.bus.ensure_group(topic, group, target)
                self._groups.add(group)
            await self.bus.publish_confirmed(topic, data, key=target)

        return send


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
