"""Reading ``workbench up`` from a test: its output until the platform says it is up."""

from __future__ import annotations

import subprocess
import time

__all__ = ["UP_LINE", "read_until_up"]

#: the last line ``workbench up`` prints once every service is healthy
UP_LINE = "Ctrl-C stops everything"


def read_until_up(process: subprocess.Popen[str], timeout: float = 180.0) -> str:
    """The output of ``process`` (``workbench up`` with ``stdout=PIPE, text=True``) up to and
    including :data:`UP_LINE`, or all of it if the process ends or ``timeout`` passes first."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if UP_LINE in line:
            break
    return "".join(lines)
