"""GraphQL extension functions: described at promotion, called in a worker process.

:class:`FunctionWorker` owns one ``python -m workbench.promotion.graphql_worker`` process for a
promoted notebook: it starts it on first use, sends one request at a time, and kills it when a
call exceeds its timeout (the next call starts a fresh one). Promoted code therefore never runs
in the process that asks — the Asset Repository builds fields from the description stored in
the artifact and only talks to the worker.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BackendUnavailable, ValidationError, WorkbenchError

if TYPE_CHECKING:
    from workbench.graphql.tenant import GraphQLTenant
    from workbench.promotion.notebooks import Notebook

__all__ = ["ExtensionFailed", "FunctionWorker", "describe_functions", "worker_environment"]

#: a worker's start (imports, the notebook's cells) may take this long
START_TIMEOUT = 60.0


class ExtensionFailed(WorkbenchError):
    """A GraphQL extension function raised, timed out or its worker died."""

    code = "EXTENSION_FAILED"


def worker_environment(home: Path, tenant_id: str) -> dict[str, str]:
    """The worker's environment: the tenant, and the data directory opened in process (the
    Asset Repository passes its own URL and a tenant token instead when it has them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_API_TOKEN")}
    env.update({"WORKBENCH_TENANT": tenant_id, "WORKBENCH_HOME": str(home)})
    env.pop("WORKBENCH_API_URL", None)
    return env


class FunctionWorker:
    """One worker process running a notebook's code; :meth:`call` is thread-safe."""

    def __init__(self, notebook_file: Path, env: Mapping[str, str]) -> None:
        self.notebook_file = notebook_file
        self.env = dict(env)
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        #: worker processes started so far (a restart after a timeout counts)
        self.starts = 0

    def _start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.promotion.graphql_worker", str(self.notebook_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self.starts += 1
        hello = self._read(process, START_TIMEOUT, "starting")
        if not hello.get("ready"):
            self._kill(process)
            raise ExtensionFailed(
                f"the extension's notebook failed while its cells ran: {hello.get('error')}"
            )
        return process

    def _read(self, process: subprocess.Popen[str], timeout: float, what: str) -> dict[str, Any]:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            self._kill(process)
            raise ExtensionFailed(
                f"the extension did not answer within {timeout:g} s while {what}; its worker "
                "was stopped (the next call starts a fresh one)"
            )
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            raise ExtensionFailed(f"the extension's worker ended (status {code}) while {what}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _kill(self, process: subprocess.Popen[str]) -> None:
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self._process is process:
            self._process = None

    def request(self, payload: dict[str, Any], timeout: float, what: str) -> Any:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            process = self._process
            assert process.stdin is not None
            payload = {"id": next(self._ids), **payload}
            try:
                process.stdin.write(json.dumps(payload, default=str) + "\n")
                process.stdin.flush()
            except BrokenPipeError:
                self._kill(process)
                raise ExtensionFailed(f"the extension's worker ended before {what}") from None
            answer = self._read(process, timeout, what)
        if "error" in answer:
            raise ExtensionFailed(f"{what} raised {answer['error']}")
        return answer.get("result")

    def call(self, function: str, args: Mapping[str, Any], timeout: float) -> Any:
        return self.request(
            {"op": "call", "function": function, "args": dict(args)},
            timeout,
            f"{function}()",
        )

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._kill(self._process)


def describe_functions(
    notebook: Notebook, tenant: GraphQLTenant, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Run the notebook's code in a worker process and describe its typed functions (all
    public ones, or ``options["functions"]``); ValidationError when none qualifies."""
    wanted = set(options.get("functions") or ())
    home = tenant.home
    with tempfile.TemporaryDirectory(prefix="wb-graphql-") as folder:
        path = Path(folder) / "notebook.json"
        path.write_text(json.dumps(notebook.content), encoding="utf-8")
        worker = FunctionWorker(path, worker_environment(home, tenant.id))
        try:
            described = worker.request({"op": "describe"}, START_TIMEOUT, "describing")
        except ExtensionFailed as exc:
            raise ValidationError(f"the graphql notebook does not run: {exc.message}") from None
        except OSError as exc:
            raise BackendUnavailable(f"could not start the extension worker: {exc}") from None
        finally:
            worker.close()
    functions = [f for f in described["functions"] if not wanted or f["name"] in wanted]
    if not functions:
        skipped = "; ".join(f"{s['name']}: {s['reason']}" for s in described["skipped"])
        raise ValidationError(
            "the notebook defines no function with type hints for every argument and its "
            "result (e.g. `def top(n: int = 3) -> list[str]:`)"
            + (f"; skipped: {skipped}" if skipped else "")
        )
    for function in functions:
        for arg in function["args"]:
            if arg["type"].startswith("entity:"):
                raise ValidationError(
                    f"{function['name']}: argument {arg['name']!r} is an entity; pass its rtId "
                    "as a str instead"
                )
        _check_entity_types(tenant, function)
    return functions


def _check_entity_types(tenant: GraphQLTenant, function: dict[str, Any]) -> None:
    returns = str(function["returns"]).strip("[]!")
    if returns.startswith("entity:"):
        type_id = returns.removeprefix("entity:").rstrip("!]")
        if type_id not in tenant.model.types:
            raise ValidationError(
                f"{function['name']} returns {type_id!r}, which is not a CK type of tenant "
                f"{tenant.id!r}; import its library first or fix the annotation"
            )
