"""The validation run of a bot promotion: the notebook runs once, top to bottom, in a fresh
tenant kernel with its parameters, before anything is stored or deployed.

The CLI (``workbench promote``), ``%promote`` and the Bot Service's ``POST /promotions`` all get
it from :class:`~workbench.promotion.service.Promotions` (``validation_run=True``): one code
path. The kernel works on the data directory (``WORKBENCH_HOME``), as a kernel of the tenant.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.bots.execution import RunOutcome

__all__ = ["RunCheck", "fresh_kernel_check"]

#: runs the notebook once in a fresh kernel: (tenant, notebook JSON, parameters) → outcome
RunCheck = Callable[[str, dict[str, Any], dict[str, Any]], "RunOutcome"]


def fresh_kernel_check(home: Path, *, timeout: float = 600.0) -> RunCheck:
    """A :data:`RunCheck` running in a fresh kernel (its own process) on data directory
    ``home``; the executed notebook is thrown away."""

    def check(tenant_id: str, notebook: dict[str, Any], parameters: dict[str, Any]) -> RunOutcome:
        from workbench.bots.execution import execute_notebook

        with tempfile.TemporaryDirectory(prefix="wb-validate-") as folder:
            return execute_notebook(
                notebook,
                Path(folder) / "run",
                home=home,
                tenant=tenant_id,
                env={"WORKBENCH_HOME": str(home)},
                parameters=parameters,
                timeout=timeout,
            )

    return check
