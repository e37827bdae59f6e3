"""The Admin Panel's Operations page against a real Bot Service (real HTTP, real Identity
token): it lists the tenant's promoted bots and their runs, runs a bot now, switches its
schedule off, and rolls a promotion back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("panel")
pytest.importorskip("papermill")

from tests.bots.conftest import TENANT, Platform, bot_notebook, promote, start_platform
from workbench.admin.api import AdminApi
from workbench.admin.views.operations import OperationsView

pytestmark = [pytest.mark.slow]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    yield from start_platform(tmp_path / "wb")


def test_bots_and_promotions_on_the_operations_page(platform: Platform) -> None:
    notebook = bot_notebook(["print('hello from the panel')"])
    promote(platform, "hello", notebook, every="1h", timeout=300)
    promote(platform, "hello", bot_notebook(["print('version two')"]), every="1h", timeout=300)
    api = AdminApi(
        identity_url=platform.identity_url,
        api_url=platform.api_url,
        token=platform.author_token,
        bots_url=platform.bots_url,
    )
    try:
        view = OperationsView(api=api, tenants=[TENANT])
        assert view.bots_table.value["name"].tolist() == ["hello"]
        assert view.bots_table.value["version"].tolist() == [2]
        assert view.bot.value == "hello"
        # no controller in this platform: said on its card, the rest of the page works
        assert "No Communication Controller" in view.adapters_note.object
        assert not view.message.visible
        view.run_now()
        assert "started" in view.message.object, view.message.object

        def ran() -> bool:
            view.show_runs()
            return len(view.runs_table.value) >= 1

        platform.wait_for(ran, timeout=120)
        view.toggle_bot()
        assert "disabled" in view.message.object, view.message.object
        assert view.bots_table.value["enabled"].tolist() == [False]
        assert "hello" in view.promotion.options
        view.rollback()
        assert "rolled back" in view.message.object, view.message.object
        assert view.bots_table.value["version"].tolist() == [1]
    finally:
        api.close()
