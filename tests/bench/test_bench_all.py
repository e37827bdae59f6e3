"""``workbench bench all``: every benchmark in one run, one summary (table, JSON, Markdown);
a benchmark that fails is reported and the others still run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.bench.common import BenchReport
from workbench.cli import bench as bench_cli
from workbench.cli import cli


def fake_ok(quick: bool = False, backend: str | None = None) -> BenchReport:
    report = BenchReport("fake-ok", quick, backend or "embedded", {"rows": 3})
    report.add("rows/s", 1234.5, "rows/s", ">= 1000", True)
    report.add("raw rows/s", 2000.0, "rows/s")
    return report


def fake_broken(quick: bool = False, backend: str | None = None) -> BenchReport:
    raise RuntimeError("the backend went away")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bench_cli,
        "BENCHMARKS",
        {"fake-ok": (__name__, "fake_ok"), "fake-broken": (__name__, "fake_broken")},
    )


@pytest.mark.usefixtures("fakes")
def test_bench_all_writes_every_report_and_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["bench", "all", "--quick", "--json", str(out)])
    assert result.exit_code == 1, result.output  # one benchmark failed
    assert "fake-ok" in result.output
    assert "FAILED" in result.output
    assert json.loads((out / "fake-ok.json").read_text())["metrics"][0]["value"] == 1234.5
    assert "went away" in json.loads((out / "fake-broken.json").read_text())["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quick"] is True
    assert summary["hardware"]["cores"]
    assert [(r["benchmark"], r["metric"], r["met"]) for r in summary["rows"]] == [
        ("fake-ok", "rows/s", True),
        ("fake-ok", "raw rows/s", None),
        ("fake-broken", "error", False),
    ]
    markdown = (out / "summary.md").read_text()
    assert "| fake-ok | rows/s | 1,234 | rows/s | >= 1000 | yes |" in markdown
    assert "| fake-broken | **failed** |" in markdown
    assert markdown.startswith("# `workbench bench all --quick`")


@pytest.mark.usefixtures("fakes")
def test_bench_all_passes_when_every_benchmark_ran(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "all", "--skip", "fake-broken"])
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.output
