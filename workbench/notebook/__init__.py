"""The notebook SDK: the ``workbench.notebook`` IPython extension and rich display.

``%load_ext workbench.notebook`` (tenant kernels load it at start) binds ``wb`` to the tenant
named by ``WORKBENCH_TENANT`` (remote when ``WORKBENCH_API_URL`` is set, else in-process on
``WORKBENCH_HOME``) and adds ``%wb``, ``%%ck`` and ``%%graphql``. Needs the ``notebook`` extra
(``pip install 'mesh-workbench[notebook]'``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.notebook.connection import NotebookConnection, connect_from_environment
    from workbench.notebook.display import CkTypeView, ImportReportView, stream_plot

# imported on first use, so ``workbench.notebook.kernelspec`` (the hub's spawner) stays light
_LAZY = {
    "NotebookConnection": "workbench.notebook.connection",
    "connect_from_environment": "workbench.notebook.connection",
    "CkTypeView": "workbench.notebook.display",
    "ImportReportView": "workbench.notebook.display",
    "stream_plot": "workbench.notebook.display",
}

__all__ = [
    "CkTypeView",
    "ImportReportView",
    "NotebookConnection",
    "connect_from_environment",
    "load_ipython_extension",
    "stream_plot",
    "unload_ipython_extension",
]


def load_ipython_extension(shell: Any) -> None:
    """Entry point of ``%load_ext workbench.notebook`` (imports IPython only now)."""
    from workbench.notebook.extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from workbench.notebook.extension import unload_ipython_extension as unload

    unload(shell)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
