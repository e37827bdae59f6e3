"""Secrets kept in the data directory (``<data>/secrets/NAME``): readable by the owner only.

Used for what a local platform generates once and reuses across starts: the demo password, the
development API token, the hub's crypt key and OAuth client secret.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["read_or_create_secret", "read_secret", "write_secret"]


def read_secret(path: Path) -> str | None:
    """The secret stored in ``path``, or None when there is none."""
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def write_secret(path: Path, value: str, *, replace: bool = True) -> None:
    """Store ``value`` in ``path`` with mode 0600 (the folder 0700). With ``replace=False`` an
    existing file is an error (FileExistsError), so two processes never both create one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")


def read_or_create_secret(
    path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(18)
) -> str:
    """The secret in ``path``, created with ``make()`` the first time."""
    existing = read_secret(path)
    if existing is not None:
        return existing
    value = make()
    write_secret(path, value, replace=False)
    return value
