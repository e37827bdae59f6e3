"""The supervisor of one promoted adapter version's process (``python -m`` this module).

``python -m workbench.promotion.adapter_supervisor STATE_FILE POINTER_FILE VERSION -- COMMAND...``
runs COMMAND (``workbench adapter run ...``) and starts it again when it exits (backoff 0.5 s
doubling to 30 s; back to 0.5 s after a run of a minute or more), until SIGTERM or SIGINT —
then it stops the adapter (SIGTERM, SIGKILL after 20 s) and exits. It also stops when
POINTER_FILE no longer names VERSION (a switch that could not reach it). STATE_FILE (JSON,
replaced atomically) says what it is doing: ``state`` (running, restarting, stopped), its own
``pid``, the adapter's ``adapterPid``, ``restarts``, the ``lastExit`` code with ``lastExitAt``
and ``lastError`` (the adapter's last lines of output) and, while it waits to start the adapter
again, ``backoffSeconds``. The pool (:mod:`workbench.promotion.adapter_pool`) starts it in a
session of its own, so it outlives the command that promoted the notebook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["main"]

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: an adapter that ran this long before it exited starts again after INITIAL_BACKOFF
STABLE_SECONDS = 60.0


def _tail(log: Path, offset: int, limit: int = 2000) -> str | None:
    """The last lines the adapter wrote since ``offset`` (what it said before it exited)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(offset, log.stat().st_size - limit))
            text = handle.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return None
    lines = text.splitlines()[-5:]
    return "\n".join(lines) or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _current_version(pointer: Path) -> int | None:
    try:
        return int(json.loads(pointer.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") != 3:
        print(__doc__, file=sys.stderr)
        return 2
    state_file, pointer, version = Path(argv[0]), Path(argv[1]), int(argv[2])
    command = argv[4:]
    stop = threading.Event()
    child: dict[str, subprocess.Popen[bytes]] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        process = child.get("process")
        if process is not None and process.poll() is None:
            process.terminate()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state: dict[str, Any] = {
        "pid": os.getpid(),
        "version": version,
        "command": command,
        "state": "starting",
        "restarts": 0,
        "startedAt": _now(),
        "adapterPid": None,
        "lastExit": None,
    }
    log = state_file.with_name("adapter.log")
    delay = INITIAL_BACKOFF
    while not stop.is_set():
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        child["process"] = process
        state.update(
            state="running", adapterPid=process.pid, adapterStartedAt=_now(), backoffSeconds=None
        )
        _write(state_file, state)
        began = time.monotonic()
        while True:
            if stop.is_set() and process.poll() is None:
                process.terminate()  # a signal that came before child["process"] was set
            try:
                code = process.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if _current_version(pointer) not in (None, version) and not stop.is_set():
                    on_signal(signal.SIGTERM, None)  # no longer the deployed version
        if stop.is_set():
            break
        if time.monotonic() - began > STABLE_SECONDS:
            delay = INITIAL_BACKOFF  # it ran a while: a fresh failure, not a crash loop
        state.update(
            state="restarting",
            lastExit=code,
            lastExitAt=_now(),
            lastError=_tail(log, offset),
            restarts=state["restarts"] + 1,
            backoffSeconds=delay,
        )
        _write(state_file, state)
        stop.wait(delay)
        delay = min(delay * 2, MAX_BACKOFF)
    last = child.get("process")
    if last is not None and last.poll() is None:
        last.terminate()
        try:
            last.wait(timeout=20)
        except subprocess.TimeoutExpired:
            last.kill()
            last.wait()
    state.update(
        state="stopped", lastExit=last.returncode if last is not None else None, stoppedAt=_now()
    )
    _write(state_file, state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
