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


def test_a_remote_promotion_goes_to_the_bot_service_with_the_kernel_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from types import SimpleNamespace

    import httpx

    from workbench.errors import BackendUnavailable
    from workbench.notebook.promote_magic import _promote_remote

    notebook = ck_notebook(tmp_path / "02-plant.ipynb", PLANT_V1)
    connection = SimpleNamespace(tenant="acme")
    monkeypatch.delenv("WORKBENCH_BOT_SERVICE_URL", raising=False)
    with pytest.raises(BackendUnavailable, match="WORKBENCH_BOT_SERVICE_URL"):
        _promote_remote(connection, notebook, "ck", "plant", {})
    sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def post(url: str, *, json: dict[str, Any], headers: dict[str, str], **_: Any) -> Any:
        sent.append((url, json, headers))
        return httpx.Response(201, json={"ref": "plant@1"})

    monkeypatch.setattr(httpx, "post", post)
    monkeypatch.setenv("WORKBENCH_BOT_SERVICE_URL", "http://bots:5009/")
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "kernel-token")
    assert _promote_remote(connection, notebook, "ck", "plant", {"every": None}) == {
        "ref": "plant@1"
    }
    [(url, body, headers)] = sent
    assert url == "http://bots:5009/tenants/acme/promotions"
    assert headers == {"Authorization": "Bearer kernel-token"}
    assert (body["kind"], body["name"], body["options"]) == ("ck", "plant", {})
    assert body["notebook"] == json.loads(notebook.read_text(encoding="utf-8"))
