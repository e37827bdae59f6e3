"""The Operations page's pipelines against a real Communication Controller and Asset Repository
(real HTTP) with a connected adapter runtime: validation problems of each definition, execute
now with the result, the executions with their input and output, adapter states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("panel")

import workbench
from tests.communication.test_controller import _RunningAdapter, _setup, _wait
from workbench.admin.api import AdminApi
from workbench.admin.views.operations import OperationsView
from workbench.messaging.local import LocalMessageBus
from workbench.services import StaticTokenAuthenticator
from workbench.services import create_app as assets_app
from workbench.services.communication_controller.app import create_app as controller_app
from workbench.testing.http import ServiceServer

TOKEN = "operations-page-token"
TENANT = "plant-a"
BROKEN = (
    "triggers:\n  - type: FromExecutePipelineCommand@1\ntransformations:\n  - type: NoSuchNode@1\n"
)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with workbench.open(tmp_path / "wb") as wb:
        auth = StaticTokenAuthenticator.from_tokens({TOKEN: [TENANT]})
        controller = controller_app(
            workbench=wb, auth=auth, bus=LocalMessageBus(), heartbeat_seconds=0.2
        )
        tenant = wb.tenants.create(TENANT)
        adapter_id, pipeline_id = _setup(tenant)
        broken = tenant.entities.create(
            "System.Communication/Pipeline",
            {"name": "broken pipeline", "enabled": False, "pipelineDefinition": BROKEN},
            associations=[
                ("System/ParentChild", tenant.entities.navigate(pipeline_id, "parent")[0].rt_id),
                ("System.Communication/Executes", adapter_id),
            ],
        )
        with (
            ServiceServer(controller) as controller_server,
            ServiceServer(assets_app(workbench=wb, auth=auth)) as assets_server,
        ):
            yield {
                "tenant": tenant,
                "controller": controller_server.url,
                "assets": assets_server.url,
                "adapter": adapter_id,
                "pipeline": pipeline_id,
                "broken": broken.rt_id,
            }


def test_pipelines_validation_execute_now_and_executions(platform: dict[str, Any]) -> None:
    api = AdminApi(
        identity_url="http://127.0.0.1:9",
        api_url=platform["assets"],
        token=TOKEN,
        controller_url=platform["controller"],
    )
    running = _RunningAdapter(
        platform["controller"], platform["tenant"], platform["adapter"], TOKEN
    )
    try:
        view = OperationsView(api=api, tenants=[TENANT])
        assert not view.message.visible, view.message.object
        table = view.pipelines_table.value
        assert sorted(table["name"]) == ["broken pipeline", f"{TENANT} pipeline"]
        problems = dict(zip(table["name"], table["problems"], strict=True))
        assert problems[f"{TENANT} pipeline"] == 0
        assert problems["broken pipeline"] >= 1
        view.pipeline.value = platform["broken"]
        assert any("NoSuchNode" in m for m in view.problems_table.value["message"])
        # execute now: the adapter runs it, the page shows the result and the execution
        tenant = platform["tenant"]
        _wait(
            lambda: tenant.entities.get(platform["adapter"])["configurationState"] == "Configured",
            "the adapter configured",
        )
        view.refresh()
        assert view.adapters_table.value["connected"].tolist() == [True]
        assert view.adapters_table.value["communication"].tolist() == ["Online"]
        view.pipeline.value = platform["pipeline"]
        view.pipeline_input.value_input = '{"q": 7}'  # as typed
        view.execute_now()
        assert "**Completed**" in view.message.object, view.message.object

        def executed() -> int:
            view.show_pipeline()
            return len(view.executions_table.value)

        _wait(executed, "an execution")
        latest = view.executions_table.value.iloc[0]
        assert latest["status"] == "Completed"
        assert latest["triggerType"] == "Manual"
        assert latest["inputData"]  # recorded: the pipeline runs with debugging on
        assert '"q": 7' in latest["outputData"]  # the input given, through the pipeline
        assert '"answer": 42' in latest["outputData"]
        # bad input is refused at the field, before anything is sent
        view.pipeline_input.value_input = "{not json"
        view.execute_now()
        assert "is not JSON" in view.message.object
    finally:
        running.stop()
        api.close()
