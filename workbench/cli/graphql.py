"""``workbench graphql ...``: a tenant's persisted queries (allow-list) and persisted-query mode.

These commands work on the data directory (the tenant's entity store), also while the platform
runs: the servers read the allow-list from the same store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from workbench.cli.common import emit, open_wb, wb_command

__all__ = ["graphql", "register"]

tenant_option = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")


@click.group()
def graphql() -> None:
    """Persisted GraphQL queries: the allow-list and the mode (automatic or allowList)."""


def _documents(path: Path) -> list[tuple[str, str | None]]:
    """The documents of a ``.graphql`` file (one document, named after the file) or of an
    Apollo persisted-query manifest (``{"operations": [{"name", "body"}, ...]}``)."""
    from workbench.errors import ValidationError

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        return [(text, path.stem)]
    try:
        manifest = json.loads(text)
        return [(op["body"], op.get("name")) for op in manifest["operations"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"{path}: not an Apollo persisted-query manifest ({exc}); give .graphql files or "
            '{"operations": [{"name": ..., "body": "query ..."}]}'
        ) from None


@wb_command(graphql, "persist")
@tenant_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def persist(tenant_id: str, paths: tuple[Path, ...]) -> None:
    """Put the documents of PATHS (.graphql files, or Apollo manifests .json) on the tenant's
    allow-list; prints each one's SHA-256 (the hash clients send)."""
    from workbench.graphql.persisted import persisted_queries

    queries = persisted_queries(open_wb().tenant(tenant_id))
    added = [
        {"sha256Hash": queries.add(body, name), "name": name}
        for path in paths
        for body, name in _documents(path)
    ]

    def human(console: Console) -> None:
        for row in added:
            console.print(f"{row['sha256Hash']}  {row['name'] or ''}", highlight=False)
        console.print(f"{len(added)} document(s) on the allow-list of tenant {tenant_id}")

    emit(added, human)


@wb_command(graphql, "persisted")
@tenant_option
def persisted(tenant_id: str) -> None:
    """List the tenant's allow-list and its mode."""
    from workbench.graphql.persisted import AUTOMATIC, PERSISTED_QUERIES_KEY, persisted_queries

    tenant = open_wb().tenant(tenant_id)
    rows = persisted_queries(tenant).list()
    data: dict[str, Any] = {
        "mode": tenant.config.get(PERSISTED_QUERIES_KEY) or AUTOMATIC,
        "queries": rows,
    }

    def human(console: Console) -> None:
        console.print(f"mode: {data['mode']}")
        for row in rows:
            console.print(f"{row['sha256Hash']}  {row['name'] or ''}", highlight=False)

    emit(data, human)


@wb_command(graphql, "unpersist")
@tenant_option
@click.argument("hashes", nargs=-1, required=True)
def unpersist(tenant_id: str, hashes: tuple[str, ...]) -> None:
    """Take documents (by SHA-256) off the tenant's allow-list."""
    from workbench.errors import NotFound
    from workbench.graphql.persisted import persisted_queries

    queries = persisted_queries(open_wb().tenant(tenant_id))
    missing = [digest for digest in hashes if not queries.remove(digest)]
    if missing:
        raise NotFound(f"not on the allow-list of tenant {tenant_id!r}: {', '.join(missing)}")
    emit({"removed": list(hashes)}, lambda c: c.print(f"removed {len(hashes)} document(s)"))


@wb_command(graphql, "mode")
@tenant_option
@click.argument("mode", type=click.Choice(["automatic", "allowList"]))
def mode(tenant_id: str, mode: str) -> None:
    """Set the tenant's persisted-query mode: ``allowList`` runs only allow-listed documents,
    ``automatic`` (the default) any document, with Automatic Persisted Queries."""
    from workbench.graphql.persisted import PERSISTED_QUERIES_KEY

    wb = open_wb()
    wb.registry.set_config(tenant_id, PERSISTED_QUERIES_KEY, mode)
    emit(
        {"tenant": tenant_id, "mode": mode},
        lambda c: c.print(
            f"tenant {tenant_id}: persisted-query mode {mode} (servers follow within 2 s)"
        ),
    )


def register(cli: click.Group) -> None:
    cli.add_command(graphql)
