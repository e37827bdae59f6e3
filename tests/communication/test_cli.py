"""``workbench pipelines validate`` checks definitions offline."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.communication.conftest import dataflow_file
from workbench.cli import cli


def test_validate_runtime_file_and_definition(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["pipelines", "validate", str(dataflow_file())])
    assert ok.exit_code == 0, ok.output
    assert "2 pipeline(s) valid" in " ".join(ok.output.split())
    bad = tmp_path / "bad.yaml"
    bad.write_text("triggers:\n  - type: FromPolling@1\ntransformations:\n  - type: Nope@1\n")
    failed = runner.invoke(cli, ["pipelines", "validate", str(bad)])
    assert failed.exit_code == 1
    text = failed.output + str(failed.stderr if failed.stderr_bytes else "")
    assert "property 'interval' is required" in text
    assert "node Nope@1 is not supported by this adapter" in text
