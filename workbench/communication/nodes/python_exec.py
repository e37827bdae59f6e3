"""``ExecutePython@1``: user Python code over the data context, run in a sandboxed worker
process (:mod:`.python_sandbox`), never in the adapter's own process."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.python_sandbox import (
    SandboxFailure,
    SandboxLimits,
    SandboxSettings,
    SandboxUnavailable,
    run_sandboxed,
)

__all__ = ["NODES"]


class ExecutePython(Node):
    """Runs ``code`` (Python, standard library only) in a sandboxed worker process (no
    network, no files of the platform, limits on time, memory and CPU) with the value at
    ``path`` bound to ``data``; what the code leaves in ``result`` (else ``data``) is written
    to ``targetPath``, what it prints goes to the execution's output. An exception, a timeout,
    an exhausted limit or a crash fails the node naming the cause."""

    type_name = "ExecutePython@1"
    properties: ClassVar[dict[str, Any]] = {
        "code": {
            "type": "string",
            "minLength": 1,
            "description": "Python code; reads data, sets result (JSON values in and out)",
        },
        "timeoutSeconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "wall-clock limit of one run (default 10)",
        },
        "memoryLimitMb": {
            "type": "integer",
            "minimum": 32,
            "description": "address-space limit of the worker (default 256)",
        },
        "cpuLimitSeconds": {
            "type": "integer",
            "minimum": 1,
            "description": "CPU-time limit of the worker (default: timeoutSeconds, rounded up)",
        },
    }
    required = ("code",)

    def _limits(self, settings: SandboxSettings) -> SandboxLimits:
        timeout = float(self.prop("timeoutSeconds", 10))
        memory = int(self.prop("memoryLimitMb", 256))
        if timeout > settings.max_timeout_seconds:
            raise self.error(
                f"{timeout:g} s is above this adapter's limit of "
                f"{settings.max_timeout_seconds:g} s "
                "(WORKBENCH_EXECUTE_PYTHON_MAX_TIMEOUT_SECONDS)",
                "timeoutSeconds",
            )
        if memory > settings.max_memory_mb:
            raise self.error(
                f"{memory} MB is above this adapter's limit of {settings.max_memory_mb} MB "
                "(WORKBENCH_EXECUTE_PYTHON_MAX_MEMORY_MB)",
                "memoryLimitMb",
            )
        cpu = int(self.prop("cpuLimitSeconds", math.ceil(timeout)))
        return SandboxLimits(timeout_seconds=timeout, memory_mb=memory, cpu_seconds=cpu)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        settings = SandboxSettings.from_settings()
        limits = self._limits(settings)
        try:
            result, printed = await run_sandboxed(
                str(self.prop("code")), context.get(self.path), limits, settings
            )
        except SandboxUnavailable as exc:
            raise self.error(str(exc)) from exc
        except SandboxFailure as exc:
            self._print(env, exc.output)
            raise self.error(str(exc), "code") from exc
        self._print(env, printed)
        self.write(context, result)

    def _print(self, env: ExecutionEnvironment, printed: str) -> None:
        for line in printed.splitlines():
            env.output.append(line)
            env.log.info("%s: %s", self.config.position, line)


NODES = [ExecutePython]
