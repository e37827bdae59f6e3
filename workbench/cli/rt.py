"""``workbench rt ...``: runtime entities: import, export, query, aggregate, get, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_tenant, wb_command

__all__ = ["register", "rt"]

FC = TypeVar("FC", bound=Callable[..., Any])

tenant_option = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")


@click.group()
def rt() -> None:
    """Runtime entities: import, export, query, get, delete."""


def _remote(tenant: Any) -> bool:
    from workbench.client.remote import RemoteTenant

    return isinstance(tenant, RemoteTenant)


@wb_command(rt, "import")
@tenant_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(tenant_id: str, file: Path) -> None:
    """Import a runtime file (YAML or JSON); all or nothing."""
    from workbench.runtime.files import import_runtime_file

    t = open_tenant(tenant_id)
    if _remote(t):
        from workbench.client.runtime_files import import_remote

        summary = import_remote(t, file)
    else:
        summary = import_runtime_file(t.entities, t.model, file, progress=True)
    emit(
        dict(summary),
        lambda c: c.print(
            f"imported {file.name}: {summary['created']} created, {summary['updated']} updated"
        ),
    )


@wb_command(rt, "export")
@tenant_option
@click.option("--type", "type_id", help="Only this CK type (and its subtypes).")
@click.option("--include-archived", is_flag=True, help="Also export archived entities.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def export(tenant_id: str, type_id: str | None, include_archived: bool, file: Path) -> None:
    """Export entities to FILE (.json for JSON, YAML otherwise)."""
    from workbench.runtime.files import export_runtime_file

    t = open_tenant(tenant_id)
    if _remote(t):
        from workbench.client.runtime_files import export_remote

        count = export_remote(t, file, ck_type_id=type_id, include_archived=include_archived)
    else:
        count = export_runtime_file(
            t.entities, t.model, file, ck_type_id=type_id, include_archived=include_archived
        )
    emit({"exported": count, "file": str(file)}, lambda c: c.print(f"wrote {count} to {file}"))


@wb_command(rt, "query")
@tenant_option
@click.argument("type_id", metavar="CKTYPEID")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help='"ATTR OP VALUE", OP an operator name (EQUALS, GREATER_THAN, ...) or =, !=, <, <=, >, >=.',
)
@click.option("--search", help="Text to search for in --search-in attributes.")
@click.option("--search-in", multiple=True, default=["name"], show_default=True)
@click.option("--sort", "sorts", multiple=True, help="ATTR, -ATTR for descending.")
@click.option("--first", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--after", help="endCursor of the previous page.")
@click.option("--include-archived", is_flag=True)
@click.option("--count", "with_count", is_flag=True, help="Also compute totalCount.")
def query(
    tenant_id: str,
    type_id: str,
    filters: tuple[str, ...],
    search: str | None,
    search_in: tuple[str, ...],
    sorts: tuple[str, ...],
    first: int,
    after: str | None,
    include_archived: bool,
    with_count: bool,
) -> None:
    """Query entities of CKTYPEID (subtypes included)."""
    page = open_tenant(tenant_id).entities.find(
        type_id,
        where=filters,
        search=search,
        search_paths=search_in,
        sort=sorts,
        first=first,
        after=after,
        include_archived=include_archived,
        include_total=with_count,
    )
    data = page.to_dict()

    def human(console: Console) -> None:
        items = data["items"]
        hidden = {"rtId", "ckTypeId", "rtCreationDateTime", "rtChangedDateTime", "rtVersion"}
        columns = ["rtId", "ckTypeId", *sorted({k for item in items for k in item} - hidden)]
        table = Table(*columns)
        for item in items:
            table.add_row(*(_cell(item.get(c)) for c in columns))
        console.print(table)
        footer = f"{len(items)} item(s)"
        if page.total_count is not None:
            footer += f" of {page.total_count}"
        if page.has_next_page:
            footer += f"; next page: --after {page.end_cursor}"
        console.print(footer)

    emit(data, human)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _paths_option(name: str, dest: str, what: str) -> Callable[[FC], FC]:
    return click.option(name, dest, multiple=True, metavar="PATH", help=f"{what} (repeat).")


@wb_command(rt, "aggregate")
@tenant_option
@click.argument("type_id", metavar="CKTYPEID")
@_paths_option("--group-by", "group_by", "Attribute path to group by")
@_paths_option("--sum", "sums", "Attribute path to sum")
@_paths_option("--avg", "avgs", "Attribute path to average")
@_paths_option("--min", "mins", "Attribute path to take the minimum of")
@_paths_option("--max", "maxs", "Attribute path to take the maximum of")
@_paths_option("--count", "counts", "Attribute path to count the values of")
@click.option("--filter", "filters", multiple=True, help='"ATTR OP VALUE", as for rt query.')
@click.option("--search", help="Text to search for in --search-in attributes.")
@click.option("--search-in", multiple=True, default=["name"], show_default=True)
@click.option("--enum-keys", is_flag=True, help="Show enum keys instead of names.")
@click.option("--first", type=click.IntRange(min=0), help="Groups to show (default: all).")
@click.option(
    "--create-index",
    is_flag=True,
    help="First create the store's index for this aggregation (SQLite; for ones run often).",
)
def aggregate(
    tenant_id: str,
    type_id: str,
    group_by: tuple[str, ...],
    sums: tuple[str, ...],
    avgs: tuple[str, ...],
    mins: tuple[str, ...],
    maxs: tuple[str, ...],
    counts: tuple[str, ...],
    filters: tuple[str, ...],
    search: str | None,
    search_in: tuple[str, ...],
    enum_keys: bool,
    first: int | None,
    create_index: bool,
) -> None:
    """Statistics over entities of CKTYPEID, computed by the store (paths as in --filter, e.g.
    'state', 'phaseL1.voltage', 'parent->name')."""
    frame = open_tenant(tenant_id).entities.aggregate(
        type_id,
        group_by=group_by,
        sum=sums,
        avg=avgs,
        min=mins,
        max=maxs,
        count=counts,
        where=filters,
        search=search,
        search_paths=search_in,
        resolve_enum_values_to_names=not enum_keys,
        first=first,
        **({"create_index": True} if create_index else {}),
    )
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")

    def human(console: Console) -> None:
        table = Table(*(str(c) for c in frame.columns))
        for record in records:
            table.add_row(*(_cell(record[c]) for c in frame.columns))
        console.print(table)
        console.print(f"{len(records)} group(s)" if group_by else "")

    emit(records, human)


@wb_command(rt, "get")
@tenant_option
@click.argument("rt_id", metavar="RTID")
def get(tenant_id: str, rt_id: str) -> None:
    """Show one entity with its associations."""
    t = open_tenant(tenant_id)
    entity = t.entities.get(rt_id)
    data = entity.to_dict()
    data["associations"] = [
        {"roleId": a.role_id, "targetRtId": a.target_rt_id, "targetCkTypeId": a.target_ck_type_id}
        for a in t.entities.links([entity.rt_id])
    ]
    emit(data, lambda c: c.print_json(data=data, default=str))


@wb_command(rt, "delete")
@tenant_option
@click.argument("rt_ids", nargs=-1, required=True, metavar="RTID...")
@click.option("--erase", is_flag=True, help="Remove for good instead of archiving.")
@click.option("--cascade", is_flag=True, help="Also delete entities that need these ones.")
def delete(tenant_id: str, rt_ids: tuple[str, ...], erase: bool, cascade: bool) -> None:
    """Archive (or --erase) entities."""
    deleted = open_tenant(tenant_id).entities.delete(list(rt_ids), erase=erase, cascade=cascade)
    verb = "erased" if erase else "archived"
    emit({verb: deleted}, lambda c: c.print(f"{verb} {len(deleted)} entit(y/ies)"))


def register(cli: click.Group) -> None:
    cli.add_command(rt)
