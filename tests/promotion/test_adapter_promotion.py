"""Kind ``adapter``: ``%%pipeline --name N`` cells become the Adapter, DataFlow and Pipeline
entities the Communication Controller deploys; new versions update them in place."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench
from tests.promotion.conftest import write_notebook
from workbench.errors import ValidationError
from workbench.promotion.service import Promotions

ANSWER = """triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: SetPrimitiveValue@1
    targetPath: $.answer
    value: 42
"""


def test_adapter_promotion_writes_the_communication_entities(tmp_path: Path) -> None:
    with workbench.open(tmp_path / "wb") as wb:
        tenant = wb.tenants.create("acme")
        promotions = Promotions(wb)
        v1 = write_notebook(
            tmp_path / "meter-adapter.ipynb",
            [f"%%pipeline --name answer\n{ANSWER}", f"%%pipeline --name old\n{ANSWER}"],
        )
        local = {
            "start": False
        }  # the entities only: no process (tests/promotion/test_adapter_pool.py)
        first = promotions.promote("acme", v1, kind="adapter", author="ada", options=local)
        assert first.artifact.details["pipelines"] == ["answer", "old"]
        adapter = tenant.entities.get(first.report["adapter"])
        assert adapter.ck_type_id == "System.Communication/Adapter"
        assert first.report["created"] == ["answer", "old"]
        linked = tenant.entities.navigate(adapter.rt_id, "Pipelines")
        assert sorted(p.attributes["name"] for p in linked) == ["answer", "old"]

        changed = ANSWER.replace("value: 42", "value: 43")
        write_notebook(v1, [f"%%pipeline --name answer\n{changed}"])
        second = promotions.promote("acme", v1, kind="adapter", author="ada", options=local)
        assert second.report["adapter"] == adapter.rt_id
        assert (second.report["updated"], second.report["disabled"]) == (["answer"], ["old"])
        pipelines = {
            p.attributes["name"]: p
            for p in tenant.entities.find("System.Communication/Pipeline", first=None).items
        }
        assert "value: 43" in pipelines["answer"].attributes["pipelineDefinition"]
        assert pipelines["old"].attributes["enabled"] is False

        rolled = promotions.rollback("acme", "meter-adapter", by="ada")
        assert rolled.report["updated"] == ["answer", "old"]


def test_invalid_pipelines_are_refused(tmp_path: Path) -> None:
    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create("acme")
        bad = write_notebook(
            tmp_path / "bad.ipynb",
            [
                "%%pipeline --name broken\ntriggers:\n  - type: FromPolling@1\ntransformations:\n"
                "  - type: Nope@1\n"
            ],
        )
        with pytest.raises(ValidationError, match="pipelines are not valid") as caught:
            Promotions(wb).promote("acme", bad, kind="adapter", author="ada")
        assert "pipeline broken" in str(caught.value)
        plain = write_notebook(tmp_path / "plain.ipynb", ["x = 1"])
        with pytest.raises(ValidationError, match="needs %%pipeline --name NAME cells"):
            Promotions(wb).promote("acme", plain, kind="adapter", author="ada")
