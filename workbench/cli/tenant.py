"""``workbench tenant ...``: create, list, show and delete tenants."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_wb, state, wb_command

__all__ = ["register", "tenant"]


@click.group()
def tenant() -> None:
    """Create, list, show and delete tenants."""


def _record(record: Any) -> dict[str, Any]:
    return record.to_document()  # type: ignore[no-any-return]


def _remote() -> Any:
    """The tenant registry over HTTP when ``--url`` (``$WORKBENCH_API_URL``) is given, else
    None: the registry of the data directory (also while ``workbench up`` runs on it)."""
    url = state().url
    if url is None:
        return None
    from workbench.cli.login import access_token
    from workbench.client.remote_tenants import RemoteTenants

    remote = RemoteTenants(url, access_token(url))
    state()._remotes.append(remote)
    return remote


@wb_command(tenant, "create")
@click.argument("tenant_id", metavar="NAME")
@click.option("--parent", help="Parent tenant: the new tenant sees its libraries and settings.")
@click.option("--description", help="A line saying what the tenant is for.")
@click.option(
    "--entities-url", help="Entity store URL (default: an SQLite file in the data directory)."
)
@click.option(
    "--streams-url", help="Stream store URL (default: a DuckDB file in the data directory)."
)
def create(
    tenant_id: str,
    parent: str | None,
    description: str | None,
    entities_url: str | None,
    streams_url: str | None,
) -> None:
    """Create tenant NAME."""
    config = {}
    if entities_url:
        config["entities.url"] = entities_url
    if streams_url:
        config["streams.url"] = streams_url
    remote = _remote()
    if remote is not None:
        data = remote.create(tenant_id, parent=parent, description=description, config=config)
        emit(data, lambda c: c.print(f"created tenant [bold]{tenant_id}[/]"))
        return
    created = open_wb().tenants.create(
        tenant_id, parent=parent, description=description, config=config
    )
    emit(_record(created.record), lambda c: c.print(f"created tenant [bold]{created.id}[/]"))


@wb_command(tenant, "list")
def list_() -> None:
    """List tenants."""
    remote = _remote()
    if remote is not None:
        found = remote.list()

        def remote_human(console: Console) -> None:
            table = Table("tenant", "parent", "description", "created")
            for r in found:
                table.add_row(r["id"], r["parent"] or "", r["description"] or "", r["created"][:19])
            console.print(table)

        emit(found, remote_human)
        return
    records = open_wb().tenants.list()

    def human(console: Console) -> None:
        table = Table("tenant", "parent", "description", "created")
        for r in records:
            table.add_row(r.id, r.parent or "", r.description or "", r.created.isoformat()[:19])
        console.print(table)

    emit([_record(r) for r in records], human)


@wb_command(tenant, "show")
@click.argument("tenant_id", metavar="NAME")
def show(tenant_id: str) -> None:
    """Show a tenant with its effective (cascaded) configuration."""
    wb = open_wb()
    record = wb.tenants.get(tenant_id)
    data = _record(record) | {"effectiveConfig": wb.registry.effective_config(tenant_id)}
    emit(data, lambda c: c.print_json(data=data, default=str))


@wb_command(tenant, "delete")
@click.argument("tenant_id", metavar="NAME")
@click.option("--yes", is_flag=True, help="Confirm: all of the tenant's data is erased.")
def delete(tenant_id: str, yes: bool) -> None:
    """Delete tenant NAME and all its data (needs --yes)."""
    remote = _remote()
    if remote is not None and yes:
        remote.delete(tenant_id)
    else:
        open_wb().tenants.delete(tenant_id, confirm=yes)
    emit({"deleted": tenant_id}, lambda c: c.print(f"deleted tenant [bold]{tenant_id}[/]"))


def register(cli: click.Group) -> None:
    cli.add_command(tenant)
