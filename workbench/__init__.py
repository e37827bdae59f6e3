"""Mesh Workbench: a notebook-centric data-mesh workbench for industrial data.

>>> import workbench
>>> wb = workbench.open("/tmp/wb")              # doctest: +SKIP
>>> t = wb.tenants.create("acme")               # doctest: +SKIP
>>> remote = workbench.connect("http://127.0.0.1:5001", tenant="acme")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import (
    Conflict,
    Forbidden,
    ModelError,
    NotFound,
    ValidationError,
    WorkbenchError,
)

if TYPE_CHECKING:
    from workbench.client.local import Tenant, Workbench
    from workbench.client.remote import RemoteTenant

__version__ = "0.1.0"


def open(data_dir: str | Path | None = None) -> Workbench:
    """Open the data directory ``data_dir`` (default ``WORKBENCH_HOME`` or ``~/.workbench``).

    The in-process client is imported on first use, so a remote-only process (a tenant kernel
    talking to the API) never loads the storage layer."""
    from workbench.client.local import open_workbench

    return open_workbench(data_dir)


def __getattr__(name: str) -> Any:
    if name in ("Tenant", "Workbench"):
        from workbench.client import local

        return getattr(local, name)
    if name == "admin":  # wb.admin.tenants(): the Admin Panel's pages inside a notebook
        import importlib

        return importlib.import_module("workbench.admin")
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def connect(
    url: str, *, tenant: str, token: str | None = None, timeout: float = 60.0
) -> RemoteTenant:
    """A client for ``tenant`` on a running Asset Repository (same API as ``open(...).tenant``).

    Needs the ``api`` extra (httpx); imported on first use so ``import workbench`` stays light.
    """
    from workbench.client.remote import connect as _connect

    return _connect(url, tenant=tenant, token=token, timeout=timeout)


__all__ = [
    "Conflict",
    "Forbidden",
    "ModelError",
    "NotFound",
    "Tenant",
    "ValidationError",
    "Workbench",
    "WorkbenchError",
    "__version__",
    "connect",
    "open",
]
