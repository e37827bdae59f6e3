"""Operations page: the tenant's adapters (connected, states, deploy), pipelines (validation
problems, executions with input/output, execute now), bots (schedule, state, last run, run now,
enable/disable, run history) and promotions (versions, roll back)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pandas as pd
import panel as pn

from workbench.admin.views.base import AdminView, choose, in_background, queued, typed

__all__ = ["OperationsView"]

#: seconds "Execute now" waits for the pipeline's result before pointing at its executions
EXECUTE_WAIT_S = 20.0
EXECUTION_COLUMNS = [
    "startedAt",
    "status",
    "triggerType",
    "durationMs",
    "errorMessage",
    "inputData",
    "outputData",
]


def _table(height: int, css: str) -> Any:
    return pn.widgets.Tabulator(
        pd.DataFrame(),
        disabled=True,
        show_index=False,
        height=height,
        sizing_mode="stretch_width",
        css_classes=[f"wb-{css}"],
    )


class OperationsView(AdminView):
    """Adapters through the Communication Controller; bots and promotions through the Bot
    Service; each acting with the signed-in user's token."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.tenant = pn.widgets.Select(
            label="Tenant", options=list(self.tenants), css_classes=["wb-ops-tenant"]
        )
        self.tenant.param.watch(queued(self.refresh), "value")
        self.adapters_table = _table(180, "adapters-table")
        self.adapter = pn.widgets.Select(label="Adapter", options={})
        self.deploy_button = pn.widgets.Button(label="Deploy configuration", color="primary")
        self.deploy_button.on_click(queued(self.deploy))
        self.pipelines_table = _table(180, "pipelines-table")
        self.pipeline = pn.widgets.Select(label="Pipeline", options={}, css_classes=["wb-pipeline"])
        self.pipeline.param.watch(queued(self.show_pipeline), "value")
        self.problems_table = _table(140, "pipeline-problems")
        self.pipeline_input = pn.widgets.TextInput(
            label="Input (JSON, optional)", placeholder="{}", css_classes=["wb-pipeline-input"]
        )
        self.execute_button = pn.widgets.Button(label="Execute now", color="primary")
        self.execute_button.on_click(queued(self.execute_now))
        self.executions_table = _table(200, "executions-table")
        self.pipelines_note = pn.pane.Markdown("")
        self._pipelines: list[dict[str, Any]] = []
        self._problems: dict[str, list[dict[str, Any]]] = {}
        self.bots_table = _table(180, "bots-table")
        self.bot = pn.widgets.Select(label="Bot", options=[], css_classes=["wb-bot"])
        self.bot.param.watch(queued(self.show_runs), "value")
        self.run_button = pn.widgets.Button(label="Run now", color="primary")
        self.run_button.on_click(queued(self.run_now))
        self.toggle_button = pn.widgets.Button(label="Enable / disable schedule")
        self.toggle_button.on_click(queued(self.toggle_bot))
        self.runs_table = _table(200, "runs-table")
        self.promotions_table = _table(180, "promotions-table")
        self.promotion = pn.widgets.Select(label="Promotion", options=[])
        self.rollback_button = pn.widgets.Button(label="Roll back to the previous version")
        self.rollback_button.on_click(queued(self.rollback))
        self._bots: list[dict[str, Any]] = []
        self.adapters_note = pn.pane.Markdown("")
        self.bots_note = pn.pane.Markdown("")
        in_background(self.refresh)

    def refresh(self) -> None:
        tenant = self.tenant.value
        if not tenant:
            return
        adapters: list[dict[str, Any]] = []
        if self.client.controller_url:
            adapters = self.attempt(lambda: self.client.adapters(tenant)) or []
        self.adapters_note.object = (
            "" if self.client.controller_url else "No Communication Controller in this platform."
        )
        self.adapters_table.value = pd.DataFrame(
            [
                {
                    "rtId": a.get("rtId"),
                    "name": a.get("name", ""),
                    "connected": a.get("connected", False),
                    "communication": a.get("communicationState", ""),
                    "configuration": a.get("configurationState", ""),
                    "deployment": a.get("deploymentState", ""),
                }
                for a in adapters
            ],
            columns=["rtId", "name", "connected", "communication", "configuration", "deployment"],
        )
        choose(
            self.adapter,
            {f"{a.get('name', '')} ({a['rtId']})": a["rtId"] for a in adapters},
        )
        self.refresh_pipelines()
        self._bots = []
        if self.client.bots_url:
            self._bots = self.attempt(lambda: self.client.bots(tenant)) or []
        self.bots_note.object = "" if self.client.bots_url else "No Bot Service in this platform."
        self.bots_table.value = pd.DataFrame(
            [
                {
                    "name": b["name"],
                    "version": b.get("version"),
                    "schedule": b.get("schedule"),
                    "enabled": b.get("enabled"),
                    "next": b.get("nextFire") or "",
                    "last run": (b.get("lastRun") or {}).get("status", ""),
                }
                for b in self._bots
            ],
            columns=["name", "version", "schedule", "enabled", "next", "last run"],
        )
        choose(self.bot, [b["name"] for b in self._bots])
        self.show_runs()
        promotions: list[dict[str, Any]] = []
        if self.client.bots_url:
            promotions = self.attempt(lambda: self.client.promotions(tenant)) or []
        self.promotions_table.value = pd.DataFrame(
            [{k: _cell(v) for k, v in p.items()} for p in promotions]
        )
        choose(self.promotion, [str(p.get("name")) for p in promotions])

    def refresh_pipelines(self) -> None:
        """The pipelines with the controller's validation of each definition."""
        tenant = self.tenant.value
        self._pipelines, self._problems = [], {}
        if self.client.controller_url and tenant:
            self._pipelines = self.attempt(lambda: self.client.pipelines(tenant)) or []
        for pipeline in self._pipelines:
            definition = pipeline["attributes"].get("pipelineDefinition") or ""
            checked = self.attempt(partial(self.client.validate_pipeline, tenant, definition))
            self._problems[pipeline["rtId"]] = (checked or {}).get("problems", [])
        self.pipelines_note.object = (
            "" if self.client.controller_url else "No Communication Controller in this platform."
        )
        self.pipelines_table.value = pd.DataFrame(
            [
                {
                    "name": p["attributes"].get("name", ""),
                    "rtId": p["rtId"],
                    "enabled": p["attributes"].get("enabled", True),
                    "debugging": bool(p["attributes"].get("isDebuggingEnabled")),
                    "problems": len(self._problems.get(p["rtId"], [])),
                }
                for p in self._pipelines
            ],
            columns=["name", "rtId", "enabled", "debugging", "problems"],
        )
        choose(
            self.pipeline,
            {
                f"{p['attributes'].get('name', '')} ({p['rtId']})": p["rtId"]
                for p in self._pipelines
            },
        )
        self.show_pipeline()

    def show_pipeline(self) -> None:
        """The chosen pipeline's validation problems and latest executions."""
        tenant, rt_id = self.tenant.value, self.pipeline.value
        problems = self._problems.get(rt_id, []) if rt_id else []
        self.problems_table.value = pd.DataFrame(
            problems, columns=["message", "location", "element"]
        )
        executions: list[dict[str, Any]] = []
        if tenant and rt_id:
            executions = self.attempt(lambda: self.client.pipeline_executions(tenant, rt_id)) or []
        self.executions_table.value = pd.DataFrame(
            [{c: _cell(e.get(c)) for c in EXECUTION_COLUMNS} for e in executions],
            columns=EXECUTION_COLUMNS,
        )

    def execute_now(self) -> None:
        """Run the chosen pipeline on its adapter, wait for its result, list it."""
        tenant, rt_id = self.tenant.value, self.pipeline.value
        if not tenant or not rt_id:
            return
        raw = typed(self.pipeline_input).strip()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError as exc:
            self.message.object = (
                f'**Input** is not JSON ({exc}): give an object such as `{{"value": 1}}`, '
                "or leave it empty."
            )
            self.message.alert_type, self.message.visible = "danger", True
            return
        result = self.attempt(
            lambda: self.client.execute_pipeline(tenant, rt_id, payload, wait=EXECUTE_WAIT_S)
        )
        if result is None:
            return
        status = result.get("status", "Sent")
        error = f": {result['error']}" if result.get("error") else ""
        self.message.object = f"Pipeline `{rt_id}` executed: **{status}**{error}."
        self.message.alert_type = "success" if status == "Completed" else "warning"
        self.message.visible = True
        self.show_pipeline()

    def show_runs(self) -> None:
        tenant, name = self.tenant.value, self.bot.value
        if not tenant or not name:
            self.runs_table.value = pd.DataFrame()
            return
        runs = self.attempt(lambda: self.client.bot_runs(tenant, name)) or []
        self.runs_table.value = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in runs])

    def deploy(self) -> None:
        tenant, rt_id = self.tenant.value, self.adapter.value
        if rt_id:
            self.attempt(
                lambda: self.client.deploy_adapter(tenant, rt_id),
                done=f"Configuration sent to adapter `{rt_id}`.",
            )
            self.refresh()

    def run_now(self) -> None:
        tenant, name = self.tenant.value, self.bot.value
        if name and self.attempt(
            lambda: self.client.run_bot(tenant, name), done=f"Bot **{name}** started."
        ):
            self.show_runs()

    def toggle_bot(self) -> None:
        tenant, name = self.tenant.value, self.bot.value
        current = next((b for b in self._bots if b["name"] == name), None)
        if current is None:
            return
        enable = not current.get("enabled", True)
        state = "enabled" if enable else "disabled (manual runs still work)"
        if self.attempt(
            lambda: self.client.set_bot_enabled(tenant, name, enable),
            done=f"Schedule of **{name}** {state}.",
        ):
            self.refresh()

    def rollback(self) -> None:
        tenant, name = self.tenant.value, self.promotion.value
        if name and self.attempt(
            lambda: self.client.rollback_promotion(tenant, name),
            done=f"**{name}** rolled back.",
        ):
            self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "## Adapters, bots and promotions",
            self.tenant,
            self.message,
            pn.Card(
                self.adapters_note,
                self.adapters_table,
                pn.Row(self.adapter, self.deploy_button),
                title="Adapters (Communication Controller)",
                sizing_mode="stretch_width",
            ),
            pn.Card(
                self.pipelines_note,
                self.pipelines_table,
                pn.Row(self.pipeline, self.pipeline_input, self.execute_button),
                "### Validation problems",
                self.problems_table,
                "### Executions (input and output when debugging is on)",
                self.executions_table,
                title="Pipelines (Communication Controller)",
                sizing_mode="stretch_width",
            ),
            pn.Card(
                self.bots_note,
                self.bots_table,
                pn.Row(self.bot, self.run_button, self.toggle_button),
                "### Runs",
                self.runs_table,
                title="Bots (Bot Service)",
                sizing_mode="stretch_width",
            ),
            pn.Card(
                self.promotions_table,
                pn.Row(self.promotion, self.rollback_button),
                title="Promotions",
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value
