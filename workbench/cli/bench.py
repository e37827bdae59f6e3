"""``workbench bench NAME``: run a benchmark, print a table, optionally write JSON."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import data_dir_option, emit, state

__all__ = ["bench", "register"]

#: benchmark name -> (module, function)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "entities-import": ("workbench.bench.entities", "entities_import"),
    "entities-read": ("workbench.bench.entities", "entities_read"),
    "entities-aggregate": ("workbench.bench.aggregations", "entities_aggregate"),
    "streams-ingest": ("workbench.bench.streams", "streams_ingest"),
    "streams-query": ("workbench.bench.streams", "streams_query"),
    "graphql-list-http": ("workbench.bench.http", "graphql_list_http"),
    "graphql-list": ("workbench.bench.graphql", "graphql_list"),
    "graphql-large": ("workbench.bench.graphql", "graphql_large"),
    "schema-build": ("workbench.bench.graphql", "schema_build"),
    "hub-spawn": ("workbench.bench.hub", "hub_spawn"),
    "bus": ("workbench.bench.bus", "bus"),
    "bot-overhead": ("workbench.bench.bots", "bot_overhead"),
    "admin-sessions": ("workbench.bench.admin", "admin_sessions"),
    "pipeline-ingest": ("workbench.bench.ingest", "pipeline_ingest"),
}


@click.group()
def bench() -> None:
    """Benchmarks (BENCHMARKS.md): figures with a same-run baseline ratio."""


def _make(name: str) -> None:
    module_name, function_name = BENCHMARKS[name]

    # ``--json PATH`` here writes the report to a file (BENCHMARKS.md), so the shared
    # ``--json`` flag is not added to benchmark commands.
    @bench.command(name, help=f"Run the {name} benchmark (see BENCHMARKS.md).")
    @data_dir_option
    @click.option("--quick", is_flag=True, help="Small size: proves it works (CI).")
    @click.option("--backend", help="Backend URL (default: embedded) e.g. mongodb://host/db.")
    @click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the report as JSON to this file.",
    )
    def run(quick: bool, backend: str | None, json_path: Path | None) -> None:
        function = getattr(importlib.import_module(module_name), function_name)
        report = function(quick=quick, backend=backend)
        data: dict[str, Any] = report.to_dict()
        if json_path is not None:
            json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")

        def human(console: Console) -> None:
            table = Table(
                "metric", "value", "unit", "target", "met", title=f"{name} ({report.backend})"
            )
            for m in report.metrics:
                met = "" if m.met is None else ("yes" if m.met else "NO")
                table.add_row(m.name, f"{m.value:,.4g}", m.unit, m.target or "", met)
            console.print(table)
            console.print(f"shape: {report.shape}")
            console.print(f"hardware: {report.hardware['cpu']}, {report.hardware['cores']} cores")

        state().as_json = False
        emit(data, human)


for _name in BENCHMARKS:
    _make(_name)


def register(cli: click.Group) -> None:
    cli.add_command(bench)
