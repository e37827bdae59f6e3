"""A bubblewrap sandbox for tenant servers when the hub cannot give them accounts of their own.

A hub that does not run as root starts every tenant server as its own account, which could read
the data directory (databases, signing keys) and the other users' working directories. Then the
server runs inside ``bwrap`` (Debian package ``bubblewrap``, unprivileged user namespaces):
the whole file system as it is, except that the hidden directories are empty tmpfs mounts, the
user's own working directory is bound back, and a fresh PID namespace with its own ``/proc``
keeps the hub's processes (and their environment) out of sight.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["bubblewrap_available", "bubblewrap_command"]


def bubblewrap_command(
    command: Sequence[str],
    *,
    hide: Sequence[Path],
    keep: Sequence[Path] = (),
    bwrap: str = "bwrap",
) -> list[str]:
    """``command`` wrapped in bwrap with the ``hide`` directories empty and ``keep`` (inside
    them) bound back read-write."""
    args = [bwrap, "--dev-bind", "/", "/"]
    for path in hide:
        args += ["--tmpfs", str(path)]
    for path in keep:
        args += ["--bind", str(path), str(path)]
    args += [
        "--unshare-pid",
        "--unshare-ipc",
        "--proc",
        "/proc",
        "--die-with-parent",
        "--new-session",
        "--",
    ]
    return [*args, *command]


@functools.cache
def bubblewrap_available(bwrap: str = "bwrap") -> bool:
    """Whether ``bwrap`` is installed and can make a sandbox here (probed once)."""
    found = shutil.which(bwrap)
    if found is None:
        return False
    try:
        result = subprocess.run(
            bubblewrap_command(["true"], hide=[], bwrap=found),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0
