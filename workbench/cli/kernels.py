"""``workbench kernels``: install and list the Jupyter kernel specs of tenants."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_wb, state, wb_command
from workbench.errors import NotFound

__all__ = ["kernels", "register"]

_INSTALL_HINT = "pip install 'mesh-workbench[notebook]'"


def _require_jupyter() -> None:
    try:
        import ipykernel  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"tenant kernels need ipykernel and jupyter_client ({exc.name} is missing): "
            f"{_INSTALL_HINT}"
        ) from None


@click.group()
def kernels() -> None:
    """Jupyter kernels bound to a tenant ("Workbench · <tenant>")."""


@wb_command(kernels, "install")
@click.option("--tenant", "tenant_id", required=True, help="The tenant the kernel binds wb to.")
@click.option("--user", is_flag=True, help="Install into the user's Jupyter data directory.")
@click.option(
    "--prefix",
    type=click.Path(path_type=Path, file_okay=False),
    help="Install into PREFIX/share/jupyter/kernels (default: this Python environment).",
)
@click.option(
    "--api-url",
    help="Reach the tenant through the Asset Repository at this URL (WORKBENCH_API_URL) "
    "instead of opening the data directory in the kernel.",
)
def install(tenant_id: str, user: bool, prefix: Path | None, api_url: str | None) -> None:
    """Write the kernel spec "Workbench · TENANT" (the workbench extension loaded at start).

    With --data-dir (or WORKBENCH_HOME) the kernel gets WORKBENCH_HOME, and the tenant must
    exist there.
    """
    from workbench.notebook.kernelspec import install_kernel_spec, kernel_name

    if user and prefix is not None:
        raise click.UsageError("give --user or --prefix, not both")
    _require_jupyter()
    kernel_name(tenant_id)  # a valid tenant id, before touching anything
    home = state().data_dir
    if home is not None and api_url is None:
        wb = open_wb()
        if not wb.registry.exists(tenant_id):
            raise NotFound(
                f"tenant {tenant_id!r} does not exist in {wb.home}; create it first "
                f"(workbench tenant create {tenant_id})"
            )
        home = wb.home
    target = install_kernel_spec(tenant_id, user=user, prefix=prefix, home=home, api_url=api_url)
    data = {"kernel": kernel_name(tenant_id), "tenant": tenant_id, "path": str(target)}
    if home is not None:
        data["dataDir"] = str(home)
    if api_url is not None:
        data["apiUrl"] = api_url

    def human(out: Console) -> None:
        out.print(f"installed kernel [bold]Workbench · {tenant_id}[/] in {target}")

    emit(data, human)


@wb_command(kernels, "list")
@click.option(
    "--prefix",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also look in PREFIX/share/jupyter/kernels.",
)
def list_(prefix: Path | None) -> None:
    """List the tenant kernel specs Jupyter can find."""
    from workbench.notebook.kernelspec import installed_kernel_specs

    _require_jupyter()
    found = installed_kernel_specs(prefix)
    data = [
        {
            "kernel": k.name,
            "tenant": k.tenant,
            "displayName": k.display_name,
            "path": k.resource_dir,
        }
        for k in found
    ]

    def human(out: Console) -> None:
        if not found:
            out.print("no tenant kernels installed (workbench kernels install --tenant T)")
            return
        table = Table("kernel", "tenant", "path")
        for k in found:
            table.add_row(k.name, k.tenant, k.resource_dir)
        out.print(table)

    emit(data, human)


def register(cli: click.Group) -> None:
    cli.add_command(kernels)
