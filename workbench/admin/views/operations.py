"""Operations page: the tenant's adapters (connected, states, deploy), bots (schedule, state,
last run, run now, enable/disable, run history) and promotions (versions, roll back)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import panel as pn

from workbench.admin.views.base import AdminView, choose

__all__ = ["OperationsView"]


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
        self.tenant.param.watch(lambda _e: self.refresh(), "value")
        self.adapters_table = _table(180, "adapters-table")
        self.adapter = pn.widgets.Select(label="Adapter", options={})
        self.deploy_button = pn.widgets.Button(label="Deploy configuration", color="primary")
        self.deploy_button.on_click(lambda _e: self.deploy())
        self.bots_table = _table(180, "bots-table")
        self.bot = pn.widgets.Select(label="Bot", options=[], css_classes=["wb-bot"])
        self.bot.param.watch(lambda _e: self.show_runs(), "value")
        self.run_button = pn.widgets.Button(label="Run now", color="primary")
        self.run_button.on_click(lambda _e: self.run_now())
        self.toggle_button = pn.widgets.Button(label="Enable / disable schedule")
        self.toggle_button.on_click(lambda _e: self.toggle_bot())
        self.runs_table = _table(200, "runs-table")
        self.promotions_table = _table(180, "promotions-table")
        self.promotion = pn.widgets.Select(label="Promotion", options=[])
        self.rollback_button = pn.widgets.Button(label="Roll back to the previous version")
        self.rollback_button.on_click(lambda _e: self.rollback())
        self._bots: list[dict[str, Any]] = []
        self.adapters_note = pn.pane.Markdown("")
        self.bots_note = pn.pane.Markdown("")
        self.refresh()

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
                    "name": (a.get("attributes") or {}).get("name", ""),
                    "connected": a.get("connected", False),
                    "type": a.get("ckTypeId"),
                }
                for a in adapters
            ],
            columns=["rtId", "name", "connected", "type"],
        )
        choose(
            self.adapter,
            {
                f"{(a.get('attributes') or {}).get('name', '')} ({a['rtId']})": a["rtId"]
                for a in adapters
            },
        )
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
