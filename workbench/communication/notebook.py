"""Pipelines in a notebook: ``%%pipeline`` runs the definition in the cell on sample input and
shows the data context after each node; ``wb.pipelines.validate(yaml)`` / ``.run(yaml, input)``.

``%%pipeline [--input JSON | --input-var NAME] [--name N] [--no-tenant]`` — the cell is a
PipelineDefinition; it runs once (triggers are not started) against the kernel's tenant (``wb``),
and the magic returns the :class:`~workbench.communication.executor.ExecutionResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from IPython.core.magic import Magics, magics_class

from workbench.communication.definition import validate_pipeline
from workbench.communication.executor import ExecutionResult, run_pipeline
from workbench.errors import ErrorDetail
from workbench.notebook.magics import argument, cell_magic, parse_argstring, with_arguments

__all__ = ["PipelineMagics", "Pipelines", "attach", "register", "render_trace"]


def _run_sync(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from code that may already be inside an event loop
    (IPython kernels run one): on a thread of its own then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: dict[str, Any] = {}

    def main() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


class Pipelines:
    """``wb.pipelines``: check and try pipeline definitions against the notebook's tenant."""

    def __init__(self, tenant: Any = None) -> None:
        self.tenant = tenant

    def validate(self, definition: str, *, name: str = "notebook") -> list[ErrorDetail]:
        """Every problem of ``definition`` (empty when it is valid)."""
        return validate_pipeline(definition, name=name)

    def run(
        self, definition: str, input: Any = None, *, name: str = "notebook", debug: bool = True
    ) -> ExecutionResult:
        """Run ``definition`` once on ``input``; the result holds the context after each node."""
        return _run_sync(  # type: ignore[no-any-return]
            run_pipeline(definition, input, name=name, tenant=self.tenant, debug=debug)
        )


def render_trace(result: ExecutionResult) -> str:
    """The debugging view as HTML: the data context after each node, then the outcome."""
    from html import escape

    parts = [f"<div><b>{escape(result.status)}</b> in {result.duration_ms:.1f} ms</div>"]
    if result.error:
        parts.append(f"<pre style='color:#b00'>{escape(result.error)}</pre>")
    for step in result.trace:
        body = escape(json.dumps(step["data"], indent=2, default=str))
        parts.append(
            f"<details open><summary>{escape(step['node'])}</summary><pre>{body}</pre></details>"
        )
    for line in result.printed:
        parts.append(f"<pre>{escape(line)}</pre>")
    return "\n".join(parts)


@magics_class
class PipelineMagics(Magics):
    """``%%pipeline``."""

    def __init__(self, shell: Any, workbench_magics: Any = None) -> None:
        super().__init__(shell)
        self.workbench_magics = workbench_magics

    def _tenant(self) -> Any:
        connection = getattr(self.workbench_magics, "connection", None)
        namespace: dict[str, Any] = getattr(self.shell, "user_ns", {})
        return getattr(connection, "client", None) or namespace.get("wb")

    @with_arguments()
    @argument("--input", default=None, help="The sample input as JSON.")
    @argument("--input-var", default=None, help="A notebook variable holding the input.")
    @argument("--name", default="notebook", help="The pipeline's name in messages.")
    @argument("--no-tenant", action="store_true", help="Run without tenant data access.")
    @cell_magic("pipeline")
    def pipeline(self, line: str, cell: str) -> ExecutionResult:
        """Run the definition in the cell on sample input; show the context after each node."""
        args = parse_argstring(self.pipeline, line)
        data: Any = None
        if args.input_var:
            data = getattr(self.shell, "user_ns", {})[args.input_var]
        elif args.input:
            data = json.loads(args.input)
        tenant = None if args.no_tenant else self._tenant()
        result = Pipelines(tenant).run(cell, data, name=args.name)
        from IPython import display

        show: Any = display.display
        show(display.HTML(render_trace(result)))  # type: ignore[no-untyped-call]
        return result


def attach(namespace: dict[str, Any]) -> Pipelines:
    """Give the notebook's ``wb`` a ``pipelines`` attribute (and ``wb_pipelines``)."""
    wb = namespace.get("wb")
    helper = Pipelines(wb)
    if wb is not None:
        with contextlib.suppress(AttributeError, TypeError):
            object.__setattr__(wb, "pipelines", helper)
    namespace["wb_pipelines"] = helper
    return helper


def register(shell: Any, workbench_magics: Any = None) -> None:
    """Add ``%%pipeline`` and ``wb.pipelines`` (call after ``wb`` is bound)."""
    shell.register_magics(PipelineMagics(shell, workbench_magics))
    attach(shell.user_ns)
