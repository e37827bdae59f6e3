"""Tenants page: the tenant tree, create (embedded or server backends), configure, delete."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import panel as pn

from workbench.admin.views.base import AdminView, choose, in_background, queued, text, typed

__all__ = ["TenantsView", "tenant_tree"]


def tenant_tree(tenants: list[dict[str, Any]]) -> pd.DataFrame:
    """Tenants in tree order (each parent before its children), indented by depth."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    ids = {t["id"] for t in tenants}
    for tenant in tenants:
        parent = tenant["parent"] if tenant["parent"] in ids else None
        by_parent.setdefault(parent, []).append(tenant)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for tenant in sorted(by_parent.get(parent, []), key=lambda t: t["id"]):
            rows.append(
                {
                    "tenant": "\u2003" * depth + ("\u2514 " if depth else "") + tenant["id"],
                    "id": tenant["id"],
                    "parent": tenant["parent"] or "",
                    "description": tenant.get("description") or "",
                    "own keys": len(tenant.get("config") or {}),
                    "inherited keys": len(tenant.get("inherited") or {}),
                    "entities": (tenant.get("backends") or {}).get("entities.url", ""),
                }
            )
            walk(tenant["id"], depth + 1)

    walk(None, 0)
    return pd.DataFrame(
        rows,
        columns=["tenant", "id", "parent", "description", "own keys", "inherited keys", "entities"],
    )


class TenantsView(AdminView):
    """List as a tree, create with backend choice, configure (own vs inherited), delete."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._data: list[dict[str, Any]] = []
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            selectable=1,
            height=260,
            sizing_mode="stretch_width",
        )
        self.new_id = pn.widgets.TextInput(label="New tenant id", placeholder="e.g. plant-linz")
        self.new_parent = pn.widgets.Select(label="Parent (cascade from)", options=[""])
        self.new_description = pn.widgets.TextInput(label="Description")
        self.backend = pn.widgets.RadioButtonGroup(
            label="Backends", options=["embedded", "server"], value="embedded"
        )
        self.entities_url = pn.widgets.TextInput(
            label="Entity store URL", placeholder="mongodb://host:27017/acme", visible=False
        )
        self.streams_url = pn.widgets.TextInput(
            label="Stream store URL", placeholder="crate://host:4200?schema=acme", visible=False
        )
        self.backend.param.watch(self._toggle_backend, "value")
        self.create_button = pn.widgets.Button(label="Create tenant", color="primary")
        self.create_button.on_click(queued(self.create))
        self.selected = pn.widgets.Select(label="Tenant", options=[])
        self.selected.param.watch(queued(self._show_config), "value")
        self.config_view = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.config_key = pn.widgets.TextInput(label="Key", placeholder="e.g. ui.theme")
        self.config_value = pn.widgets.TextInput(label="Value (JSON or text; empty removes)")
        self.config_button = pn.widgets.Button(label="Set key", color="primary")
        self.config_button.on_click(queued(self.configure))
        self.confirm = pn.widgets.TextInput(label="Type the tenant id to confirm deletion")
        self.delete_button = pn.widgets.Button(label="Delete tenant", color="danger")
        self.delete_button.on_click(queued(self.delete))
        in_background(self.refresh)

    def _toggle_backend(self, _event: Any) -> None:
        server = self.backend.value == "server"
        self.entities_url.visible = self.streams_url.visible = server

    def refresh(self) -> None:
        data = self.attempt(self.client.tenants)
        if data is None:
            return
        self._data = data
        self.table.value = tenant_tree(data)
        ids = [t["id"] for t in data]
        choose(self.new_parent, ["", *ids])
        choose(self.selected, ids)
        self._show_config()

    def _show_config(self) -> None:
        tenant = next((t for t in self._data if t["id"] == self.selected.value), None)
        if tenant is None:
            self.config_view.object = ""
            return
        lines = ["| key | value | where from |", "|---|---|---|"]
        for key, value in sorted((tenant.get("config") or {}).items()):
            lines.append(f"| `{key}` | `{json.dumps(value)}` | set here |")
        for key, value in sorted((tenant.get("inherited") or {}).items()):
            lines.append(f"| `{key}` | `{json.dumps(value)}` | inherited |")
        for key, value in sorted((tenant.get("backends") or {}).items()):
            lines.append(f"| `{key}` | `{value}` | backend (fixed) |")
        self.config_view.object = "\n".join(lines)

    def create(self) -> None:
        config: dict[str, Any] = {}
        if self.backend.value == "server":
            if text(self.entities_url):
                config["entities.url"] = text(self.entities_url)
            if text(self.streams_url):
                config["streams.url"] = text(self.streams_url)
        tenant_id = text(self.new_id)
        created = self.attempt(
            lambda: self.client.create_tenant(
                tenant_id,
                parent=self.new_parent.value or None,
                description=text(self.new_description) or None,
                config=config,
            ),
            done=f"Tenant **{tenant_id}** created.",
        )
        if created is not None:
            self.new_id.value = ""
            self.refresh()
            self.selected.value = tenant_id

    def configure(self) -> None:
        key, raw = text(self.config_key), typed(self.config_value)
        tenant_id = self.selected.value
        if not raw:
            action = lambda: self.client.configure_tenant(tenant_id, unset=[key])  # noqa: E731
        else:
            try:
                value: Any = json.loads(raw)
            except ValueError:
                value = raw
            action = lambda: self.client.configure_tenant(tenant_id, set={key: value})  # noqa: E731
        if self.attempt(action, done=f"`{key}` of **{tenant_id}** saved.") is not None:
            self.refresh()

    def delete(self) -> None:
        tenant_id = self.selected.value
        deleted = self.attempt(
            lambda: self.client.delete_tenant(tenant_id, confirm=text(self.confirm)),
            done=f"Tenant **{tenant_id}** deleted.",
        )
        if deleted:
            self.confirm.value = ""
            self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        create = pn.Card(
            self.new_id,
            self.new_parent,
            self.new_description,
            self.backend,
            self.entities_url,
            self.streams_url,
            self.create_button,
            title="Create a tenant",
            sizing_mode="stretch_width",
        )
        configure = pn.Card(
            self.selected,
            self.config_view,
            pn.Row(self.config_key, self.config_value),
            self.config_button,
            pn.layout.Divider(),
            self.confirm,
            self.delete_button,
            title="Configure or delete",
            sizing_mode="stretch_width",
        )
        return pn.Column(
            "## Tenants",
            self.message,
            self.table,
            pn.Row(create, configure),
            sizing_mode="stretch_width",
        )
