"""Communication: the pipeline engine that adapters run, and the adapter runtime.

- :func:`parse_pipeline` / :func:`validate_pipeline`: check a pipeline definition (YAML);
- :func:`build_pipeline` / :func:`run_pipeline`: run it over a JSON data context;
- :func:`default_registry`: every supported node (``Name@Version``) with its JSON Schema.

The Communication Controller service is :mod:`workbench.services.communication_controller.app`;
the adapter process is :mod:`workbench.communication.adapter`.
"""

from __future__ import annotations

from workbench.communication.datacontext import DataContext
from workbench.communication.definition import (
    PipelineDefinition,
    parse_pipeline,
    validate_pipeline,
)
from workbench.communication.errors import PipelineDefinitionError, PipelineExecutionError
from workbench.communication.executor import (
    ExecutionResult,
    Pipeline,
    build_pipeline,
    run_pipeline,
)
from workbench.communication.node import ExecutionEnvironment, Node, NodeConfig, TriggerNode
from workbench.communication.registry import NodeRegistry, default_registry

__all__ = [
    "DataContext",
    "ExecutionEnvironment",
    "ExecutionResult",
    "Node",
    "NodeConfig",
    "NodeRegistry",
    "Pipeline",
    "PipelineDefinition",
    "PipelineDefinitionError",
    "PipelineExecutionError",
    "TriggerNode",
    "build_pipeline",
    "default_registry",
    "parse_pipeline",
    "run_pipeline",
    "validate_pipeline",
]
