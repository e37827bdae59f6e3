"""Mesh Workbench: a notebook-centric data-mesh workbench for industrial data.

>>> import workbench
>>> wb = workbench.open("/tmp/wb")              # doctest: +SKIP
>>> t = wb.tenants.create("acme")               # doctest: +SKIP
"""

from workbench.client.local import Tenant, Workbench
from workbench.client.local import open_workbench as open  # noqa: A001
from workbench.errors import (
    Conflict,
    Forbidden,
    ModelError,
    NotFound,
    ValidationError,
    WorkbenchError,
)

__version__ = "0.1.0"

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
    "open",
]
