"""The notebook SDK: the ``workbench.notebook`` IPython extension and rich display.

``%load_ext workbench.notebook`` (tenant kernels load it at start) binds ``wb`` to the tenant
named by ``WORKBENCH_TENANT`` (remote when ``WORKBENCH_API_URL`` is set, else in-process on
``WORKBENCH_HOME``) and adds ``%wb``, ``%%ck`` and ``%%graphql``. Needs the ``notebook`` extra
(``pip install 'mesh-workbench[notebook]'``).
"""

from __future__ import annotations

from typing import Any

from workbench.notebook.connection import NotebookConnection, connect_from_environment
from workbench.notebook.display import CkTypeView, ImportReportView, stream_plot

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
