"""``wb`` bound remotely: WORKBENCH_API_URL set, the magics go through a real Asset Repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("httpx", reason="the api extra is not installed")

import workbench
from tests.notebook.conftest import PLANT_V1, TENANT
from workbench.client.remote import RemoteTenant
from workbench.errors import ValidationError
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "notebook-test-token"


@pytest.fixture
def remote_ip(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create(TENANT)
        app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
        with ServiceServer(app) as server:
            monkeypatch.setenv("WORKBENCH_API_URL", server.url)
            monkeypatch.setenv("WORKBENCH_API_TOKEN", TOKEN)
            monkeypatch.setenv("WORKBENCH_TENANT", TENANT)
            monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "unused"))
            shell.run_line_magic("load_ext", "workbench.notebook")
            try:
                yield shell
            finally:
                shell.run_line_magic("unload_ext", "workbench.notebook")


def test_wb_is_a_remote_client_and_the_magics_use_it(remote_ip: Any) -> None:
    wb = remote_ip.user_ns["wb"]
    assert isinstance(wb, RemoteTenant)
    info = remote_ip.run_line_magic("wb", "")
    assert info.mode == "remote"
    assert info.server == wb.url
    view = remote_ip.run_cell_magic("ck", "", PLANT_V1)
    assert view.report.added_types == ["Plant/Machine", "Plant/Pump"]
    wb.entities.create("Plant/Pump", {"name": "P-9", "flowRate": 9.0})
    frame = remote_ip.run_cell_magic(
        "graphql", "", "{ runtime { rtPlantPump { items { name flowRate } } } }"
    )
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [{"name": "P-9", "flowRate": 9.0}]
    with pytest.raises(ValidationError):
        remote_ip.run_cell_magic("graphql", "", "{ runtime { nope } }")


def test_a_wrong_token_leaves_wb_unbound(
    shell: Any, remote_ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "wrong")
    shell.run_line_magic("reload_ext", "workbench.notebook")
    assert "not bound" in repr(shell.user_ns["wb"])
