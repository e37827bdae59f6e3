"""``workbench serve admin``: its server processes come from ``--num-procs``, else the
``admin_num_procs`` setting (``WORKBENCH_ADMIN_NUM_PROCS``), else one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from workbench.cli import cli


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The AdminConfig each run would serve (nothing is started)."""
    import workbench.logs
    import workbench.services.admin

    configs: list[Any] = []
    monkeypatch.setattr(
        workbench.services.admin, "serve", lambda config, **_: configs.append(config)
    )
    monkeypatch.setattr(workbench.logs, "configure_logging", lambda *_, **__: None)
    monkeypatch.delenv("WORKBENCH_ADMIN_NUM_PROCS", raising=False)
    return configs


def _serve(tmp_path: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "admin", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("environment", "args", "expected"),
    [(None, (), 1), ("3", (), 3), ("3", ("--num-procs", "0"), 0)],
)
def test_num_procs_is_the_option_else_the_setting_else_one(
    served: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    args: tuple[str, ...],
    expected: int,
) -> None:
    if environment is not None:
        monkeypatch.setenv("WORKBENCH_ADMIN_NUM_PROCS", environment)
    _serve(tmp_path, *args)
    assert [config.num_procs for config in served] == [expected]


def test_a_negative_setting_is_refused(
    served: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_ADMIN_NUM_PROCS", "-1")
    result = CliRunner().invoke(cli, ["serve", "admin", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "admin_num_procs" in str(result.exception) + result.output
    assert served == []
