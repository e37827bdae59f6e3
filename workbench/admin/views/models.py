"""Models page: a tenant's libraries, the type graph, a type's attributes, library import."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from workbench.admin.views.base import AdminView, choose, in_background, plotting, queued
from workbench.ck.model import CkModel
from workbench.errors import ValidationError

__all__ = ["ModelsView", "type_graph"]


def type_graph(model: CkModel, *, prefix: str = "") -> hv.Graph:
    """Inheritance (derives from) and association edges between the model's types, laid out
    in columns by inheritance depth. ``prefix`` limits it to types whose id starts with it
    (their base types are kept so every edge has both ends)."""
    plotting()
    shown = {t for t in model.types if t.startswith(prefix)}
    for type_id in list(shown):
        shown.update(model.types[type_id].base_chain)
    columns: dict[int, list[str]] = {}
    for type_id in sorted(shown):
        columns.setdefault(len(model.types[type_id].base_chain), []).append(type_id)
    positions = {
        type_id: (depth, -row) for depth, ids in columns.items() for row, type_id in enumerate(ids)
    }
    edges = []
    for type_id in sorted(shown):
        ck_type = model.types[type_id]
        if ck_type.derived_from in shown:
            edges.append((type_id, ck_type.derived_from, "derives from"))
        for association in ck_type.own_associations:
            if association.target_type_id in shown:
                edges.append((type_id, association.target_type_id, association.role_id))
    if not positions:
        return hv.Text(0, 0, f"no types whose id starts with {prefix!r}").opts(
            responsive=True, height=120, xaxis=None, yaxis=None
        )
    nodes = hv.Nodes(
        [(x, y, type_id, type_id) for type_id, (x, y) in positions.items()], vdims="type"
    )
    graph = hv.Graph(((pd.DataFrame(edges, columns=["start", "end", "kind"])), nodes), vdims="kind")
    labels = hv.Labels(nodes, ["x", "y"], "type")
    return (graph * labels).opts(
        hv.opts.Graph(
            edge_color="kind",
            edge_cmap="Category10",
            node_size=10,
            directed=True,
            arrowhead_length=0.02,
            responsive=True,
            height=520,
            xaxis=None,
            yaxis=None,
            tools=["hover"],
        ),
        hv.opts.Labels(text_font_size="8pt", yoffset=0.25),
    )


class ModelsView(AdminView):
    """Libraries, type graph, attributes (own and inherited), import with validation report."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.tenant = pn.widgets.Select(label="Tenant", options=list(self.tenants))
        self.tenant.param.watch(queued(self.refresh), "value")
        self.libraries_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=180,
            sizing_mode="stretch_width",
        )
        self.prefix = pn.widgets.TextInput(label="Types starting with", placeholder="Demo.Energy/")
        self.prefix.param.watch(queued(self._draw_graph), "value")
        self.graph = pn.pane.HoloViews(sizing_mode="stretch_width", height=540)
        self.type_select = pn.widgets.Select(label="Type", options=[])
        self.type_select.param.watch(queued(self._show_type), "value")
        self.attributes_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=260,
            sizing_mode="stretch_width",
        )
        self.upload = pn.widgets.FileInput(accept=".yaml,.yml,.zip,.json", label="Library file")
        self.import_button = pn.widgets.Button(label="Import library", color="primary")
        self.import_button.on_click(queued(self.import_library))
        self.report = pn.pane.Markdown("")
        self._model: CkModel | None = None
        in_background(self.refresh)

    def refresh(self) -> None:
        tenant = self.tenant.value
        if not tenant:
            return
        libraries = self.attempt(lambda: self.client.libraries(tenant))
        model = self.attempt(lambda: self.client.model(tenant))
        if libraries is None or model is None:
            return
        self._model = model
        self.libraries_table.value = pd.DataFrame(libraries)
        own = [lib["name"] for lib in libraries if not lib.get("inherited")]
        if not self.prefix.value and own:
            self.prefix.value = f"{own[-1].split('-')[0]}/" if "-" in own[-1] else ""
        choose(self.type_select, sorted(model.types))
        self._draw_graph()
        self._show_type()

    def _draw_graph(self) -> None:
        if self._model is not None:
            self.graph.object = type_graph(self._model, prefix=self.prefix.value or "")

    def _show_type(self) -> None:
        if self._model is None or not self.type_select.value:
            return
        ck_type = self._model.types[self.type_select.value]
        rows = [
            {
                "attribute": a.name,
                "type": a.value_type.value,
                "optional": a.is_optional,
                "declared on": a.declared_on,
                "inherited": a.declared_on != ck_type.id,
            }
            for a in ck_type.attributes.values()
        ]
        rows += [
            {
                "attribute": f"→ {assoc.role_id}",
                "type": assoc.target_type_id,
                "optional": True,
                "declared on": assoc.declared_on,
                "inherited": assoc.declared_on != ck_type.id,
            }
            for assoc in ck_type.associations
        ]
        self.attributes_table.value = pd.DataFrame(
            rows, columns=["attribute", "type", "optional", "declared on", "inherited"]
        )

    def import_library(self) -> None:
        tenant, content = self.tenant.value, self.upload.value
        if self.attempt(lambda: _require_file(content)) is None:
            return
        report = self.attempt(
            lambda: self.client.import_library(
                tenant, self.upload.filename or "library.yaml", content
            )
        )
        if report is None:
            self.report.object = ""
            return
        lines = [f"### Imported into {tenant}"]
        for key, value in report.items():
            lines.append(f"- **{key}**: {value}")
        self.report.object = "\n".join(lines)
        self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "## Models",
            self.tenant,
            self.message,
            self.libraries_table,
            pn.Card(self.prefix, self.graph, title="Type graph", sizing_mode="stretch_width"),
            pn.Card(
                self.type_select,
                self.attributes_table,
                title="Type attributes",
                sizing_mode="stretch_width",
            ),
            pn.Card(
                self.upload,
                self.import_button,
                self.report,
                title="Import a library",
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )


def _require_file(content: bytes | None) -> bytes:
    if not content:
        raise ValidationError("choose a library file (.yaml, .zip or .json) first")
    return content
