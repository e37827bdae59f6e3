"""``workbench demo``: build the demo tenant and show what it holds (what ``make run`` does)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import console, emit, open_wb, state, wb_command

__all__ = ["register"]


def register(cli: click.Group) -> None:
    @wb_command(cli, "demo")
    @click.option("--tenant", "tenant_id", default="demo", show_default=True)
    @click.option(
        "--days",
        type=click.IntRange(0, 60),
        default=7,
        show_default=True,
        help="Days of 1-second stream data for each energy meter.",
    )
    def demo(tenant_id: str, days: int) -> None:
        """Build the demo tenant (Demo.Energy library, sample entities, stream data)."""
        from workbench.demo import build_demo_tenant

        wb = open_wb()
        quiet = state().as_json
        summary = build_demo_tenant(
            wb,
            tenant_id,
            days=days,
            with_streams=days > 0,
            say=(lambda _: None) if quiet else (lambda m: console.print(f"· {m}")),
        )
        summary["dataDir"] = str(wb.home)

        def human(out: Console) -> None:
            table = Table("type", "entities", title=f"tenant {tenant_id} in {wb.home}")
            for type_id, count in sorted(summary["entities"].items()):
                table.add_row(type_id, str(count))
            out.print(table)
            out.print(f"libraries: {', '.join(summary['libraries'])}")
            out.print(f"stream points added: {summary['streamPoints']:,}")
            home = f"--data-dir {wb.home}"
            out.print("\nTry:")
            for command in (
                f"ck show --tenant {tenant_id} Demo.Energy/EnergyMeter",
                f"rt query --tenant {tenant_id} Demo.Energy/Meter --filter 'state EQUALS Active'",
            ):
                out.print(f"  .venv/bin/workbench {home} {command}", soft_wrap=True)

        emit(summary, human)
