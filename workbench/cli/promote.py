"""``workbench promote`` and ``workbench promotions ...``: notebooks become versioned services.

Exit status: 0 done, 1 refused (validation failed, unknown tenant or version, conflict; the
reason on stderr), 2 usage error. ``--json`` prints the result as one JSON document.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_wb, report_error, wb_command

__all__ = ["promote", "promotions", "register"]

tenant_option = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")


def local_author() -> str:
    """Who promotes from this machine without a service in between: the workbench user named
    by the environment (a tenant kernel's), else the operating-system user."""
    for variable in ("WORKBENCH_USER", "JUPYTERHUB_USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"


def _print_result(data: dict[str, Any]) -> None:
    def human(console: Console) -> None:
        console.print(
            f"promoted [bold]{data['ref']}[/] ({data['kind']}) into tenant {data['tenant']}: "
            f"{data['content_hash']}"
        )
        details = data.get("details") or {}
        if details.get("libraries"):
            console.print("  libraries: " + ", ".join(details["libraries"]))
        if details.get("functions"):
            console.print("  fields: " + ", ".join(f["name"] for f in details["functions"]))
        if details.get("bot"):
            console.print(f"  schedule: {details['bot']['schedule']['kind']}")
        report = data.get("report") or {}
        process = report.get("process")
        if process:
            console.print(
                f"  adapter {report.get('adapter')}: process of version {process['version']} "
                f"(pid {process.get('adapterPid')}), log {process.get('log')}"
            )
        elif report.get("start"):
            console.print(f"  adapter {report.get('adapter')}: start it with {report['start']}")

    emit(data, human)


@click.command("promote")
@tenant_option
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["ck", "bot", "adapter", "graphql"]),
    required=True,
    help="What the notebook becomes.",
)
@click.option("--name", default=None, help="Promotion name (default: from the file name).")
@click.option("--cron", default=None, help="bot: cron expression (5 or 6 fields).")
@click.option("--timezone", default=None, help="bot: time zone of --cron (default UTC).")
@click.option("--every", default=None, help="bot: run every DURATION (30s, 5m, 1h).")
@click.option("--at", "at_", default=None, help="bot: run once at this ISO time.")
@click.option("--after", default=None, help="bot: run after these bots succeeded (a,b).")
@click.option("--on-event", default=None, help="bot: run on entity events: TYPE[:kind,kind].")
@click.option(
    "--event-filter",
    "event_filter",
    multiple=True,
    metavar="FIELD=VALUE",
    help="bot: with --on-event, run only for entities whose FIELD has VALUE (JSON or text; "
    "repeat a field to allow several values; or a JSON object).",
)
@click.option("--timeout", default=None, help="bot/graphql: time limit per run or call.")
@click.option("--retries", type=int, default=None, help="bot: retries after a failed run.")
@click.option("--concurrency", type=int, default=None, help="bot: concurrent runs allowed.")
@click.option(
    "--missed",
    type=click.Choice(["skip", "catch-up"]),
    default=None,
    help="bot: what to do about runs missed while the service was down.",
)
@click.option("--alert-webhook", "alert_webhooks", multiple=True, help="bot: POST on failure.")
@click.option("--alert-email", "alert_emails", multiple=True, help="bot: mail on failure.")
@click.option("--no-run", is_flag=True, help="bot: skip the validation run in a fresh kernel.")
@click.option(
    "--no-start",
    is_flag=True,
    help="adapter: write the entities only; start no process in the local pool.",
)
@click.option(
    "--controller",
    "controller_url",
    default=None,
    help="adapter: the Communication Controller its process registers with "
    "(default: the settings' / the one `workbench up` runs).",
)
@click.option(
    "--api-url",
    default=None,
    help="adapter: the Asset Repository its process writes through (default: WORKBENCH_API_URL).",
)
@click.option(
    "--identity-url",
    default=None,
    help="adapter: the Identity service its process takes its token from (default: the issuer).",
)
def promote(
    tenant_id: str,
    notebook: Path,
    kind: str,
    name: str | None,
    no_run: bool,
    at_: str | None,
    **options: Any,
) -> None:
    """Promote NOTEBOOK: validate it, store an immutable version, deploy it."""
    from workbench.promotion.service import Promotions

    wb = open_wb()
    options["at"] = at_
    if options.pop("no_start"):
        options["start"] = False
    result = Promotions(wb).promote(
        tenant_id,
        notebook,
        kind=kind,
        name=name,
        author=local_author(),
        options=options,
        validation_run=not no_run,
    )
    _print_result(result.to_dict())


@click.group()
def promotions() -> None:
    """Promoted notebooks: list, show, diff, rollback, retire, resume."""


@wb_command(promotions, "list")
@tenant_option
@click.option("--kind", default=None, help="Only this kind.")
def list_(tenant_id: str, kind: str | None) -> None:
    """List a tenant's promotions with their deployed version."""
    from workbench.promotion.service import Promotions

    rows = Promotions(open_wb()).list(tenant_id, kind)

    def human(console: Console) -> None:
        table = Table("name", "kind", "deployed", "latest", "state", "author", "updated")
        for r in rows:
            table.add_row(
                r["name"],
                r["kind"],
                str(r["deployed"] or "-"),
                str(r["latest"]),
                r["state"],
                r["author"],
                r["updated"],
            )
        console.print(table)

    emit(rows, human)


def _ref(ref: str) -> tuple[str, int | None]:
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise click.BadParameter(f"{ref!r}: write NAME or NAME@VERSION (e.g. daily@3)")
    return name, int(version) if version else None


@wb_command(promotions, "show")
@tenant_option
@click.argument("ref", metavar="NAME[@VERSION]")
def show(tenant_id: str, ref: str) -> None:
    """Show a version (default: the deployed one), its deployment and history."""
    from workbench.promotion.service import Promotions

    name, version = _ref(ref)
    data = Promotions(open_wb()).show(tenant_id, name, version)

    def human(console: Console) -> None:
        deployment = data["deployment"] or {}
        console.print(
            f"[bold]{data['ref']}[/] {data['kind']} by {data['author']} at {data['created']}"
        )
        console.print(f"  hash: {data['content_hash']}")
        console.print(
            f"  deployed: {deployment.get('version', '-')} ({deployment.get('state', 'stored')})"
        )
        console.print(f"  versions: {', '.join(map(str, data['versions']))}")
        console.print(f"  parameters: {data['parameters']}")
        console.print("  packages: " + ", ".join(f"{k} {v}" for k, v in data["packages"].items()))

    emit(data, human)


@wb_command(promotions, "diff")
@tenant_option
@click.argument("name")
@click.argument("old", type=int)
@click.argument("new", type=int)
def diff(tenant_id: str, name: str, old: int, new: int) -> None:
    """Unified diff of versions OLD and NEW (cells and metadata)."""
    from workbench.promotion.service import Promotions

    text = Promotions(open_wb()).diff(tenant_id, name, old, new)
    emit({"name": name, "old": old, "new": new, "diff": text}, lambda c: click.echo(text, nl=False))


@wb_command(promotions, "rollback")
@tenant_option
@click.argument("name")
@click.option("--to", "to", type=int, default=None, help="Version (default: the previous one).")
def rollback(tenant_id: str, name: str, to: int | None) -> None:
    """Deploy an earlier version again, in one atomic switch."""
    from workbench.promotion.service import Promotions

    result = Promotions(open_wb()).rollback(tenant_id, name, by=local_author(), to=to)
    data = result.to_dict()
    emit(data, lambda c: c.print(f"rolled back {name} to {data['ref']}"))


@wb_command(promotions, "retire")
@tenant_option
@click.argument("name")
def retire(tenant_id: str, name: str) -> None:
    """Take a promotion out of service (its versions are kept)."""
    from workbench.promotion.service import Promotions

    deployment = Promotions(open_wb()).retire(tenant_id, name, by=local_author())
    emit(deployment.to_dict(), lambda c: c.print(f"retired {name}"))


@wb_command(promotions, "resume")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant (default: every one).")
def resume(tenant_id: str | None) -> None:
    """Start the local pool's process of every deployed adapter promotion whose supervisor is
    gone (after a reboot); one still running is kept. Exit 1 when one could not be started."""
    from workbench.promotion.adapter_pool import resume_pools

    wb = open_wb()
    if tenant_id is not None:
        wb.registry.get(tenant_id)  # NotFound names the tenant
    results = resume_pools(wb, [tenant_id] if tenant_id else None, by=local_author())

    def human(console: Console) -> None:
        if not results:
            console.print("no deployed adapter promotions")
        for r in results:
            process = r.get("process") or {}
            said = r.get("error") or r.get("reason") or f"pid {process.get('adapterPid')}"
            console.print(f"{r['tenant']}/{r['name']}@{r['version']}: {r['action']} ({said})")

    emit(results, human)
    failed = [
        f"{r['tenant']}/{r['name']}: {r['error']}" for r in results if r["action"] == "failed"
    ]
    if failed:
        report_error(RuntimeError("not resumed: " + "; ".join(failed)))
        sys.exit(1)


def register(cli: click.Group) -> None:
    from workbench.cli.common import data_dir_option, json_option, url_option

    cli.add_command(data_dir_option(url_option(json_option(promote))))
    cli.add_command(promotions)
