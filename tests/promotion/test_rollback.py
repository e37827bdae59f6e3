"""Rollback is one atomic switch: readers always see a whole, valid deployment."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import workbench
from tests.promotion.conftest import write_notebook
from workbench.errors import Conflict
from workbench.promotion.artifacts import ArtifactStore
from workbench.promotion.service import Promotions


def test_rollback_switches_atomically_under_concurrent_readers(tmp_path: Path) -> None:
    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create("acme")
        promotions = Promotions(wb)
        for version in (1, 2):
            notebook = write_notebook(tmp_path / "job.ipynb", [f"print({version})"])
            promotions.promote("acme", notebook, kind="bot", author="ada", options={"every": "1h"})
        store = ArtifactStore(wb.registry.tenant_dir("acme"), "acme")
        seen: set[int] = set()
        problems: list[BaseException] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    deployment = store.deployment("job")
                    assert deployment is not None
                    artifact = store.get("job", deployment.version)
                    assert f"print({artifact.version})" in artifact.notebook["cells"][0]["source"]
                    seen.add(deployment.version)
                except BaseException as exc:
                    problems.append(exc)
                    return

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        for _ in range(30):
            assert promotions.rollback("acme", "job", by="ada").artifact.version == 1
            assert promotions.rollback("acme", "job", by="ada", to=2).artifact.version == 2
        stop.set()
        for reader in readers:
            reader.join()
        assert problems == []
        assert seen == {1, 2}
        history = store.history("job")
        assert [h["action"] for h in history[:3]] == ["promote", "promote", "rollback"]
        assert all(h["by"] == "ada" for h in history)
        promotions.rollback("acme", "job", by="ada", to=1)
        with pytest.raises(Conflict, match="no version before 1"):
            promotions.rollback("acme", "job", by="ada")
        retired = promotions.retire("acme", "job", by="ada")
        assert retired.state == "retired"
        assert store.deployments("bot") == []
