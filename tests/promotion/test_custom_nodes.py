"""Custom nodes of an adapter notebook: Python classes with a JSON Schema for their properties,
read at promotion in a process of their own, checked at promotion and by the Communication
Controller's validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from tests.promotion.adapter_notebooks import SCALE_NODE, adapter_cells, scale_pipeline
from tests.promotion.conftest import write_notebook
from workbench.communication.registry import NodeRegistry, default_registry
from workbench.errors import ValidationError
from workbench.messaging.local import LocalMessageBus
from workbench.promotion.custom_nodes import tenant_node_registry
from workbench.promotion.service import Promotions
from workbench.runtime.files import import_runtime_file
from workbench.services.auth import StaticTokenAuthenticator
from workbench.services.communication_controller.app import create_app
from workbench.testing.http import ServiceServer

NO_PROCESS = {"start": False}
TOKEN = "custom-nodes-test-token"


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[Any]:
    with workbench.open(tmp_path / "wb") as opened:
        tenant = opened.tenants.create("energy")
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
        yield opened


def test_custom_nodes_are_described_and_kept_in_the_artifact(wb: Any, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "meter-adapter.ipynb", adapter_cells())
    result = Promotions(wb).promote(
        "energy", notebook, kind="adapter", author="ada", options=NO_PROCESS
    )
    node = result.artifact.details["customNodes"]["ScaleValue@1"]
    assert node["kind"] == "transformation"
    assert node["required"] == ["factor"]
    assert node["properties"]["factor"] == {"type": "number", "description": "the multiplier"}
    assert node["description"] == "Multiply the number at path by factor."
    # the promoting process never ran the notebook's code
    assert "ScaleValue@1" not in default_registry()
    registry, custom = tenant_node_registry(wb.tenant("energy"))
    assert "ScaleValue@1" in registry
    assert set(custom) == {"ScaleValue@1"}


@pytest.mark.parametrize(
    ("factor", "expected"),
    [
        ("twice", ["'twice' is not of type 'number'", "fix: give it number (the multiplier)"]),
        (None, ["'factor'", "is not of type 'number'"]),
    ],
)
def test_bad_properties_are_refused_naming_node_property_value_and_fix(
    wb: Any, tmp_path: Path, factor: object, expected: list[str]
) -> None:
    notebook = write_notebook(
        tmp_path / "bad.ipynb", adapter_cells(factor="null" if factor is None else factor)
    )
    with pytest.raises(ValidationError, match="pipelines are not valid") as caught:
        Promotions(wb).promote("energy", notebook, kind="adapter", author="ada", options=NO_PROCESS)
    text = str(caught.value) + " ".join(str(d) for d in caught.value.details)
    assert "ScaleValue@1" in text
    assert "property 'factor'" in text
    for part in expected:
        assert part in text
    assert Promotions(wb).list("energy") == []


def test_a_missing_required_property_and_a_minimum(wb: Any, tmp_path: Path) -> None:
    text = scale_pipeline().replace("    factor: 2\n", "    offset: -1\n")
    notebook = write_notebook(tmp_path / "bad.ipynb", [SCALE_NODE, f"%%pipeline --name s\n{text}"])
    with pytest.raises(ValidationError) as caught:
        Promotions(wb).promote("energy", notebook, kind="adapter", author="ada", options=NO_PROCESS)
    details = " | ".join(str(d) for d in caught.value.details)
    assert "property 'factor' is required (the multiplier)" in details
    assert "-1 is less than the minimum of 0" in details
    assert "fix: give it number, >= 0 (added after scaling)" in details


def test_node_cells_that_do_not_load_or_take_a_built_in_name(wb: Any, tmp_path: Path) -> None:
    broken = SCALE_NODE.replace("from workbench.communication import Node\n", "")
    notebook = write_notebook(tmp_path / "node-a.ipynb", adapter_cells(node=broken))
    with pytest.raises(ValidationError, match=r"do not load: .*NameError.*'Node'.*import what"):
        Promotions(wb).promote("energy", notebook, kind="adapter", author="ada", options=NO_PROCESS)
    clash = SCALE_NODE.replace('"ScaleValue@1"', '"Simulation@1"')
    notebook = write_notebook(tmp_path / "node-b.ipynb", adapter_cells(node=clash))
    with pytest.raises(ValidationError, match="node Simulation@1 is built in; give ScaleValue"):
        Promotions(wb).promote("energy", notebook, kind="adapter", author="ada", options=NO_PROCESS)


def test_the_registry_hook_checks_custom_nodes() -> None:
    from workbench.communication import Node

    class Bad(Node):
        type_name = "Bad"

    with pytest.raises(ValidationError, match="type_name 'Bad'; give it Name@Version"):
        NodeRegistry().add_custom(Bad)

    class BadSchema(Node):
        type_name = "BadSchema@1"
        properties = {"n": {"type": "integr"}}

    with pytest.raises(ValidationError, match=r"BadSchema@1: the JSON Schema .* is invalid"):
        NodeRegistry().add_custom(BadSchema)


def test_the_controller_validates_with_the_promoted_nodes(wb: Any, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "meter-adapter.ipynb", adapter_cells())
    Promotions(wb).promote("energy", notebook, kind="adapter", author="ada", options=NO_PROCESS)
    auth = StaticTokenAuthenticator.from_tokens({TOKEN: ["energy"]})
    app = create_app(workbench=wb, auth=auth, bus=LocalMessageBus())
    with ServiceServer(app) as server:

        def check(definition: str) -> dict[str, Any]:
            response = httpx.post(
                f"{server.url}/tenants/energy/pipelines/validate",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json={"definition": definition},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        assert check(scale_pipeline()) == {"valid": True, "problems": []}
        answer = check(scale_pipeline(factor="'x'"))
        assert answer["valid"] is False
        [problem] = answer["problems"]
        assert "(ScaleValue@1)" in problem["element"]
        assert "property 'factor': 'x' is not of type 'number'" in problem["message"]
        assert "fix: give it number (the multiplier)" in problem["message"]
        unknown = check(scale_pipeline().replace("ScaleValue@1", "ScaleValue@2"))
        assert "ScaleValue@2 is not supported" in unknown["problems"][0]["message"]
