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
    "graphql-large-http": ("workbench.bench.graphql_http", "graphql_large_http"),
    "schema-build": ("workbench.bench.graphql", "schema_build"),
    "hub-spawn": ("workbench.bench.hub", "hub_spawn"),
    "bus": ("workbench.bench.bus", "bus"),
    "bot-overhead": ("workbench.bench.bots", "bot_overhead"),
    "admin-sessions": ("workbench.bench.admin", "admin_sessions"),
    "pipeline-ingest": ("workbench.bench.ingest", "pipeline_ingest"),
    "edge-offline": ("workbench.bench.edge", "edge_offline"),
}


BACKEND_OPTION = click.option(
    "--backend", help="Backend URL (default: embedded) e.g. mongodb://host/db."
)


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
    @BACKEND_OPTION
    @click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the report as JSON to this file.",
    )
    def run(quick: bool, backend: str | None, json_path: Path | None, **extra: Any) -> None:
        function = getattr(importlib.import_module(module_name), function_name)
        report = function(quick=quick, backend=backend, **extra)
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

    for option in EXTRA_OPTIONS.get(name, ()):
        option(run)


#: options of single benchmarks, passed to their function as keyword arguments
EXTRA_OPTIONS: dict[str, list[Any]] = {
    "graphql-list-http": [
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=1,
            show_default=True,
            help="Asset Repository processes (serve asset-repository --workers).",
        )
    ],
    "edge-offline": [
        click.option(
            "--minutes",
            type=click.FloatRange(min=0.05),
            default=None,
            help="How long the link is cut, in minutes of wall clock (default 10; --quick: 5 s).",
        )
    ],
}

for _name in BENCHMARKS:
    _make(_name)


def summary_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per figure of every report (and one per benchmark that failed to run)."""
    rows: list[dict[str, Any]] = []
    for name, report in reports.items():
        if "error" in report:
            rows.append(
                {
                    "benchmark": name,
                    "metric": "error",
                    "value": None,
                    "unit": "",
                    "target": "",
                    "met": False,
                    "error": report["error"],
                }
            )
            continue
        for metric in report["metrics"]:
            rows.append(
                {
                    "benchmark": name,
                    "metric": metric["name"],
                    "value": metric["value"],
                    "unit": metric["unit"],
                    "target": metric["target"],
                    "met": metric["met"],
                }
            )
    return rows


def summary_markdown(rows: list[dict[str, Any]], *, quick: bool, hardware: dict[str, Any]) -> str:
    """The summary as a Markdown table (what the README's figures are copied from)."""
    size = "--quick" if quick else "--full"
    lines = [
        f"# `workbench bench all {size}`",
        "",
        f"{hardware.get('cpu')}, {hardware.get('cores')} cores, Python {hardware.get('python')}",
        "",
        "| benchmark | metric | value | unit | target | met |",
        "|---|---|---:|---|---|---|",
    ]
    for row in rows:
        if row["metric"] == "error":
            lines.append(f"| {row['benchmark']} | **failed** | | | | {row['error']} |")
            continue
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(
            f"| {row['benchmark']} | {row['metric']} | {row['value']:,.4g} | {row['unit']} | "
            f"{row['target'] or ''} | {met} |"
        )
    return "\n".join(lines) + "\n"


@bench.command("all")
@data_dir_option
@click.option("--quick/--full", default=False, help="Small sizes (CI) or the full runs.")
@BACKEND_OPTION
@click.option(
    "--json",
    "json_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every report (NAME.json) and the summary (summary.json, summary.md) here.",
)
@click.option("--only", multiple=True, metavar="NAME", help="Run only these benchmarks.")
@click.option("--skip", multiple=True, metavar="NAME", help="Leave these benchmarks out.")
def run_all(
    quick: bool,
    backend: str | None,
    json_dir: Path | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
) -> None:
    """Run every benchmark and print one summary table (BENCHMARKS.md).

    A benchmark that fails is reported as failed and the others still run; the exit status is 1
    when any failed (a target missed is a figure, not a failure)."""
    from workbench.bench.common import hardware

    unknown = sorted(set(only) | set(skip) - set(BENCHMARKS))
    if unknown:
        raise click.BadParameter(
            f"no benchmark named {', '.join(unknown)}; the benchmarks: {', '.join(BENCHMARKS)}",
            param_hint="--only/--skip",
        )
    names = [n for n in BENCHMARKS if (not only or n in only) and n not in skip]
    reports: dict[str, dict[str, Any]] = {}
    console = Console(stderr=True)
    for index, name in enumerate(names, 1):
        console.print(f"[{index}/{len(names)}] {name} ...")
        module_name, function_name = BENCHMARKS[name]
        try:
            function = getattr(importlib.import_module(module_name), function_name)
            reports[name] = function(quick=quick, backend=backend).to_dict()
        except Exception as exc:  # one benchmark's failure must not hide the others' figures
            reports[name] = {"benchmark": name, "error": f"{type(exc).__name__}: {exc}"}
            console.print(f"  {name} failed: {type(exc).__name__}: {exc}")
    rows = summary_rows(reports)
    machine = hardware()
    summary = {"quick": quick, "backend": backend, "hardware": machine, "rows": rows}
    if json_dir is not None:
        json_dir.mkdir(parents=True, exist_ok=True)
        for name, report in reports.items():
            (json_dir / f"{name}.json").write_text(
                json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
            )
        (json_dir / "summary.json").write_text(
            json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
        )
        (json_dir / "summary.md").write_text(
            summary_markdown(rows, quick=quick, hardware=machine), encoding="utf-8"
        )

    def human(out: Console) -> None:
        table = Table("benchmark", "metric", "value", "unit", "target", "met", title="bench all")
        for row in rows:
            if row["metric"] == "error":
                table.add_row(row["benchmark"], "FAILED", "", "", "", row["error"])
                continue
            met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
            value = f"{row['value']:,.4g}"
            table.add_row(
                row["benchmark"], row["metric"], value, row["unit"], row["target"] or "", met
            )
        out.print(table)

    state().as_json = False
    emit(summary, human)
    if any("error" in report for report in reports.values()):
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(bench)
