"""The node base classes and what a running node may use (:class:`ExecutionEnvironment`).

A transformation node implements ``async run(context, env)``; a trigger node implements
``async start(host, fire)`` (long-running: call ``fire(input, trigger_type)`` for each execution)
or nothing, when something outside the adapter fires it (manual and cron runs). Properties were
validated against the node's schema before the node is built.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from workbench.communication.datacontext import (
    DataContext,
    DocumentMode,
    TargetValueKind,
    WriteMode,
)
from workbench.communication.errors import PipelineExecutionError
from workbench.communication.schema import CHILDREN_KEY, enum_value
from workbench.errors import WorkbenchError

__all__ = [
    "ExecutionEnvironment",
    "Fire",
    "Node",
    "NodeConfig",
    "TriggerHost",
    "TriggerNode",
    "TriggerType",
    "run_nodes",
]

T = TypeVar("T")

#: TriggerType values of PipelineExecution
TriggerType = str
#: what a trigger calls to start one execution: (input data, trigger type)
Fire = Callable[[Any, TriggerType], Awaitable[Any]]


@dataclass
class NodeConfig:
    """One node of a definition: its type, properties, position (``transformations[2]``)."""

    type: str
    properties: dict[str, Any]
    position: str
    pipeline: str
    line: int | None = None
    #: child nodes by group: ``transformations`` for most control nodes, ``cases[0]`` and
    #: ``default`` for Switch@1
    groups: dict[str, list[NodeConfig]] = field(default_factory=dict)

    @property
    def children(self) -> list[NodeConfig]:
        return self.groups.get(CHILDREN_KEY, [])


class TriggerHost(Protocol):
    """What an adapter offers its trigger nodes."""

    tenant_id: str

    def subscribe(self, topic: str, pattern: str) -> Any:
        """A bus subscription on the tenant's bus (see MessageBus.subscribe)."""

    def consume(self, topic: str, pattern: str, group: str) -> Any:
        """A durable consumer on the tenant's bus (see MessageBus.consume)."""

    def add_http_route(self, method: str, path: str, fire: Fire) -> None:
        """Serve ``method path`` under ``/{tenantId}{path}``; each request fires."""


@dataclass
class ExecutionEnvironment:
    """What one execution's nodes may use: the tenant's data services, the bus, configuration."""

    pipeline_name: str = "<pipeline>"
    pipeline_rt_id: str | None = None
    data_flow_rt_id: str | None = None
    adapter_rt_id: str | None = None
    tenant_id: str | None = None
    #: the tenant's entity and stream API (in-process ``Tenant`` or ``RemoteTenant``)
    tenant: Any = None
    #: hands data to another pipeline of the data flow: (target pipeline rtId, data)
    send_data_event: Callable[[str, Any], Awaitable[None]] | None = None
    #: configuration entities the pipeline uses (``Uses``), as entity dicts
    configurations: Sequence[Mapping[str, Any]] = field(default_factory=list)
    #: record the data context after each node (the debugging view)
    debug: bool = False
    trace: list[dict[str, Any]] = field(default_factory=list)
    log: logging.Logger = field(
        default_factory=lambda: logging.getLogger("workbench.communication.pipeline")
    )
    #: lines printed by PrintDebug@1 / Logger@1 (also logged)
    output: list[str] = field(default_factory=list)

    def require_tenant(self, node: Node) -> Any:
        if self.tenant is None:
            raise node.error(
                "this node reads or writes tenant data, but the pipeline runs without a tenant; "
                "run it in an adapter or pass tenant= to run_pipeline"
            )
        return self.tenant

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking data-service call in a worker thread."""
        return await asyncio.to_thread(functools.partial(func, *args, **kwargs))


class Node:
    """A transformation node. Subclasses set the class attributes and implement :meth:`run`."""

    #: ``Name@Version``
    type_name: ClassVar[str] = ""
    #: ``trigger`` or ``transformation``
    kind: ClassVar[str] = "transformation"
    #: JSON Schema of the node's own properties (camelCase keys)
    properties: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    #: control nodes run child nodes given under ``transformations:``
    has_children: ClassVar[bool] = False

    def __init__(self, config: NodeConfig, groups: dict[str, list[Node]] | None = None) -> None:
        self.config = config
        self.props: Mapping[str, Any] = config.properties
        self.groups = groups or {}
        self.children = self.groups.get("transformations", [])

    @classmethod
    def child_groups(cls, item: Mapping[str, Any]) -> list[tuple[str, tuple[Any, ...], Any]]:
        """The child node lists of a definition item: ``(label, key path, items)``."""
        if not cls.has_children:
            return []
        return [("transformations", ("transformations",), item.get("transformations"))]

    # ---- properties

    def prop(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)

    def enum(self, name: str, values: list[str], default: str) -> str:
        return enum_value(self.props.get(name, default), values)

    @property
    def path(self) -> str:
        return str(self.props.get("path", "$"))

    @property
    def target_path(self) -> str:
        return str(self.props.get("targetPath", "$"))

    def write(self, context: DataContext, value: Any, target: str | None = None) -> None:
        """Write ``value`` to ``targetPath`` (or ``target``) with the node's write settings."""
        mode = WriteMode(self.enum("targetValueWriteMode", list(WriteMode), "Overwrite"))
        kind = TargetValueKind(self.enum("targetValueKind", list(TargetValueKind), "Simple"))
        document = DocumentMode(self.enum("documentMode", list(DocumentMode), "Extend"))
        context.set(target or self.target_path, value, mode=mode, kind=kind, document=document)

    def error(self, message: str, property: str | None = None) -> PipelineExecutionError:
        """An execution error naming this node (and ``property``)."""
        if property:
            message = f"property {property!r}: {message}"
        return PipelineExecutionError(
            self.config.pipeline, self.config.position, self.type_name, message
        )

    # ---- running

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the node holds across executions (connections), its children's too:
        called when the adapter replaces or stops the pipeline. Never raises."""
        for children in self.groups.values():
            for child in children:
                await child.aclose()

    async def run_children(
        self, context: DataContext, env: ExecutionEnvironment, group: str = "transformations"
    ) -> None:
        await run_nodes(self.groups.get(group, []), context, env)


class TriggerNode(Node):
    """A trigger: starts executions. The default does nothing (fired from outside)."""

    kind: ClassVar[str] = "trigger"
    #: PipelineExecution TriggerType of the executions it starts
    trigger_type: ClassVar[str] = "Event"

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        raise self.error("a trigger does not run as a transformation; list it under triggers:")

    async def start(self, host: TriggerHost, fire: Fire) -> None:
        """Run until cancelled, firing executions (default: nothing to wait for)."""


async def run_nodes(nodes: Sequence[Node], context: DataContext, env: ExecutionEnvironment) -> None:
    """Run ``nodes`` in order on ``context``; wrap unexpected errors with the node's name."""
    for node in nodes:
        try:
            await node.run(context, env)
        except PipelineExecutionError:
            raise
        except WorkbenchError as exc:
            raise node.error(str(exc)) from exc
        except Exception as exc:  # a node's own failure: the run fails, the adapter goes on
            env.log.exception("node failed", extra={"pipeline": env.pipeline_name})
            raise node.error(f"{type(exc).__name__}: {exc}") from exc
        if env.debug:
            env.trace.append(
                {"node": f"{node.config.position} ({node.type_name})", "data": context.snapshot()}
            )
