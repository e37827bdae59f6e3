"""The worker that runs the code of an ``ExecutePython@1`` node, in its own sandboxed process.

Run as ``python -I -S -c <this file's text>`` (standard library only, no site-packages, no
environment): reads ``{"code", "data", "limits"}`` as JSON from stdin, sets its resource limits
(address space, CPU seconds, file size; soft and hard alike, so the code cannot raise them),
runs the code with ``data`` bound and writes one JSON answer to its original stdout:
``{"ok": true, "result", "output"}`` (``result`` as the code left it, else ``data``; ``output``
what it printed) or ``{"ok": false, "kind", "error", "line", "output"}`` (kind ``exception``,
``memory`` or ``result``). Nothing here may import from ``workbench``: the sandbox holds only the
interpreter and its standard library.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import traceback
from typing import Any

FILENAME = "<ExecutePython>"


def _limit(name: str, value: int | None) -> None:
    if value is not None:
        resource.setrlimit(getattr(resource, name), (value, value))


def _line(exc: BaseException) -> int | None:
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == FILENAME:
            found = frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        found = exc.lineno
    return found


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # the code's own writes to fd 1 go to stderr, not into the answer
    limits = request.get("limits") or {}
    cpu = limits.get("cpuSeconds")
    _limit("RLIMIT_CORE", 0)
    _limit("RLIMIT_FSIZE", limits.get("fileBytes"))
    if cpu is not None:
        # SIGXCPU at the soft limit, SIGKILL a second later should the code catch it
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 1))
    reserve = bytearray(1 << 20)  # freed to report a MemoryError
    _limit("RLIMIT_AS", limits.get("memoryBytes"))
    printed = io.StringIO()
    sys.stdout = printed
    namespace: dict[str, Any] = {"__name__": "__pipeline__", "data": request.get("data")}
    answer: dict[str, Any]
    try:
        exec(compile(request["code"], FILENAME, "exec"), namespace)  # the sandbox's purpose
        result = namespace.get("result", namespace.get("data"))
        try:
            text = json.dumps({"ok": True, "result": result, "output": printed.getvalue()})
        except (TypeError, ValueError) as exc:
            answer = {"ok": False, "kind": "result", "error": f"{type(exc).__name__}: {exc}"}
        else:
            answer = {}
    except MemoryError:
        del reserve
        answer = {"ok": False, "kind": "memory", "error": "MemoryError"}
    except BaseException as exc:  # every failure of the code is reported
        answer = {
            "ok": False,
            "kind": "exception",
            "error": f"{type(exc).__name__}: {exc}",
            "line": _line(exc),
        }
    if answer:
        answer["output"] = printed.getvalue()[-4000:]
        text = json.dumps(answer)
    with os.fdopen(answer_fd, "wb") as out:
        out.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
