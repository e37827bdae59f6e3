"""The ``workbench.notebook`` IPython extension: ``wb``, the magics and the rich displays.

A tenant kernel loads it at start (``workbench kernels install``); elsewhere run
``%load_ext workbench.notebook``. It binds ``wb`` to the tenant the environment names (see
:func:`~workbench.notebook.connection.connect_from_environment`), registers ``%wb``, ``%%ck`` and
``%%graphql`` (:mod:`workbench.notebook.magics`) and the displays of
:mod:`workbench.notebook.display`.
"""

from __future__ import annotations

from typing import Any

from workbench.communication import notebook as pipeline_magic
from workbench.notebook.display import register_formatters, unregister_formatters
from workbench.notebook.magics import WorkbenchMagics
from workbench.notebook.promote_magic import register as register_promote_magic

__all__ = ["load_ipython_extension", "magics_of", "unload_ipython_extension"]


def magics_of(shell: Any) -> WorkbenchMagics:
    """The extension's magics (and connection) registered on ``shell``."""
    found = shell.magics_manager.registry.get(WorkbenchMagics.__name__)
    if not isinstance(found, WorkbenchMagics):
        raise LookupError("the workbench.notebook extension is not loaded in this shell")
    return found


def load_ipython_extension(shell: Any) -> None:
    """Bind ``wb`` to the tenant, register the magics and the rich displays on ``shell``."""
    magics = WorkbenchMagics(shell)
    shell.register_magics(magics)
    register_formatters(shell, magics.current_model)
    magics.bind_from_environment()
    register_promote_magic(shell, magics)
    pipeline_magic.register(shell, magics)  # %%pipeline and wb.pipelines


def unload_ipython_extension(shell: Any) -> None:
    """Close the tenant's connection and remove ``wb``, the displays and the magics."""
    magics = magics_of(shell)
    magics.unbind()
    shell.user_ns.pop("wb", None)
    unregister_formatters(shell)
    for kind, names in magics.magics.items():
        for name in names:
            shell.magics_manager.magics[kind].pop(name, None)
    shell.magics_manager.registry.pop(WorkbenchMagics.__name__, None)
