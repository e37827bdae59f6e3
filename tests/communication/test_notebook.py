"""``%%pipeline`` and ``wb.pipelines`` in an IPython shell."""

from __future__ import annotations

from typing import Any

from tests.conftest import METER_1
from workbench.communication.notebook import register, render_trace

CELL = f"""triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: GetRtEntitiesById@1
    rtIds: [{METER_1}]
    targetPath: $.meters
  - type: Math@1
    path: $.meters[0].phaseL1.voltage
    operator: Multiply
    value: 2
    targetPath: $.doubled
"""


def test_pipeline_cell_magic_shows_the_context_after_each_node(demo: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["wb"] = demo
    shell.user_ns["sample"] = {"a": 1}
    register(shell)
    result = shell.run_cell_magic("pipeline", "--input-var sample", CELL)
    assert result.status == "Completed", result.error
    assert result.output["doubled"] == 461.8
    assert [s["node"] for s in result.trace] == [
        "input",
        "transformations[0] (GetRtEntitiesById@1)",
        "transformations[1] (Math@1)",
    ]
    html = render_trace(result)
    assert "transformations[1] (Math@1)" in html
    problems = shell.user_ns["wb_pipelines"].validate("triggers: []\nx: 1\n")
    assert any("unknown root key 'x'" in str(p) for p in problems)
    shell.user_ns.pop("wb")
