"""``%promote`` in a tenant kernel (an IPython shell with the extension loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.promotion.conftest import PLANT_V1, ck_notebook


def test_promote_magic_promotes_the_saved_notebook(ip: Any, tmp_path: Path) -> None:
    notebook = ck_notebook(tmp_path / "02-plant.ipynb", PLANT_V1)
    result = ip.run_line_magic("promote", f"--kind ck {notebook}")
    assert result["ref"] == "plant@1"
    assert result["author"] == "ada"
    assert "Plant/Pump" in ip.user_ns["wb"].model.types
    assert ip.user_ns["wb"].bot.outputs == {}


def test_promote_magic_needs_a_path_outside_jupyter_server(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="needs the notebook's path"):
        ip.run_line_magic("promote", "--kind ck")


def test_wb_bot_outputs_outside_a_run(ip: Any) -> None:
    ip.run_cell("wb.bot.output('total', 42)")
    assert ip.user_ns["wb"].bot.outputs == {"total": 42}
