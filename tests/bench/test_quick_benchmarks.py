"""Every benchmark runs once at its small size (``--quick``) and writes a well-formed report.

These prove the benchmarks work; the figures come from full runs (BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.cli.bench import BENCHMARKS
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.slow

#: benchmarks of the real ingest path: RabbitMQ (and its management API for the tenant vhost)
ON_RABBITMQ = {"pipeline-ingest", "edge-offline"}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_quick_benchmark_writes_a_report(name: str, tmp_path: Path) -> None:
    if name in ON_RABBITMQ:
        require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
        require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ management API")
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(cli, ["bench", name, "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == name
    assert report["quick"] is True
    assert report["hardware"]["cores"]
    assert report["metrics"], "a benchmark must report at least one figure"
    assert all(isinstance(m["value"], int | float) for m in report["metrics"])
    # every benchmark compares against a baseline measured in the same run
    assert report["baseline"] or any("raw" in m["name"] for m in report["metrics"])
