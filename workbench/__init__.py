"""Mesh Workbench: a notebook-centric data-mesh workbench for industrial data.

>>> import workbench
>>> wb = workbench.open("/tmp/wb")              # doctest: +SKIP
>>> t = wb.tenants.create("acme")               # doctest: +SKIP
>>> remote = workbench.connect("http://127.0.0.1:5001", tenant="acme")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.client.local import Tenant, Workbench
from workbench.client.local import open_workbench as open
from workbench.errors import (
    Conflict,
    Forbidden,
    ModelError,
    NotFound,
    ValidationError,
    WorkbenchError,
)

if TYPE_CHECKING:
    from workbench.client.remote import RemoteTenant

__version__ = "0.1.0"


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
