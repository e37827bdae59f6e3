"""Errors of the pipeline engine: each names the pipeline, the node (position and type) and the
property concerned, and says how to fix it."""

from __future__ import annotations

from collections.abc import Sequence

from workbench.errors import ErrorDetail, ValidationError, WorkbenchError

__all__ = ["PipelineDefinitionError", "PipelineExecutionError", "node_label"]


def node_label(pipeline: str, position: str, node_type: str) -> str:
    """``pipeline 'read meter', transformations[2] (Simulation@1)``."""
    return f"pipeline {pipeline!r}, {position} ({node_type})"


class PipelineDefinitionError(ValidationError):
    """A pipeline definition that cannot be deployed; ``details`` hold one problem each, with
    the line of the definition (``line 7``) as location when it is known."""

    code = "PIPELINE_DEFINITION"

    def __init__(self, message: str, details: Sequence[ErrorDetail] = ()) -> None:
        super().__init__(message, details)


class PipelineExecutionError(WorkbenchError):
    """A node failed while a pipeline ran: ``pipeline``, ``position`` and ``node_type`` say
    where, the message says what and how to fix it."""

    code = "PIPELINE_EXECUTION"

    def __init__(self, pipeline: str, position: str, node_type: str, message: str) -> None:
        self.pipeline = pipeline
        self.position = position
        self.node_type = node_type
        self.reason = message
        super().__init__(f"{node_label(pipeline, position, node_type)}: {message}")
