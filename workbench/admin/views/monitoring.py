"""Monitoring page: health of every service, metric history as time plots (requests, latency,
errors, up, adapters online, pipeline runs, bot runs), the audit log."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
import param

from workbench.admin.metrics_history import MetricsHistory, Plot, StoreHistory
from workbench.admin.metrics_store import MetricsStore
from workbench.admin.views.base import AdminView, in_background, plotting, queued

__all__ = ["MonitoringView"]


def _curves(plot: Plot) -> hv.NdOverlay | hv.Text:
    frame = plot.frame
    if frame.empty:
        return hv.Text(0, 0, f"no {plot.title} samples yet").opts(height=220, responsive=True)
    curves = {
        str(series): hv.Curve(group, "time", "value", label=str(series))
        for series, group in frame.groupby("series")
    }
    return hv.NdOverlay(curves, kdims="series").opts(
        hv.opts.Curve(height=220, responsive=True, tools=["hover"], ylabel=plot.title),
        hv.opts.NdOverlay(title=""),  # the title is the caption above the plot
    )


def _latest(plot: Plot, most: int = 4) -> str:
    """The latest value of each series, as text under the plot's title."""
    frame = plot.frame.dropna(subset=["value"])
    if frame.empty:
        return "no samples yet"
    last = frame.sort_values("time").groupby("series")["value"].last()
    shown = [f"{series}: {value:.3g}" for series, value in list(last.items())[:most]]
    return "latest " + ", ".join(shown)


class MonitoringView(AdminView):
    """``/healthz`` + ``/readyz`` table, the metric plots of ``history``, the audit log."""

    store = param.ClassSelector(class_=MetricsStore, allow_None=True, doc="Scraped metrics.")
    history = param.Parameter(
        default=None,
        doc="Where the plots come from (a MetricsHistory); default: the store's samples.",
    )
    window_s = param.Integer(default=3600, doc="Seconds of history plotted.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.history is None and self.store is not None:
            self.history = StoreHistory(self.store)
        self.health_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
        )
        self.source = pn.pane.Markdown("", css_classes=["wb-metrics-source"])
        self.plots = pn.Column(sizing_mode="stretch_width", css_classes=["wb-metric-plots"])
        self.refresh_button = pn.widgets.Button(label="Refresh", color="primary")
        self.refresh_button.on_click(queued(self.refresh))
        self.audit_tenant = pn.widgets.Select(label="Tenant", options=list(self.tenants))
        self.audit_actor = pn.widgets.TextInput(label="Who")
        self.audit_action = pn.widgets.TextInput(label="What (action)")
        self.audit_button = pn.widgets.Button(label="Filter audit log")
        self.audit_button.on_click(queued(self.load_audit))
        self.audit_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=260,
            sizing_mode="stretch_width",
            pagination="local",
            page_size=20,
        )
        in_background(self.refresh)
        in_background(self.load_audit)

    def refresh(self) -> None:
        health = self.attempt(self.client.health) or []
        self.health_table.value = pd.DataFrame(
            [
                {
                    "service": h.name,
                    "url": h.url,
                    "live": h.live,
                    "ready": h.ready,
                    "detail": h.detail,
                    "ms": h.ms,
                }
                for h in health
            ],
            columns=["service", "url", "live", "ready", "detail", "ms"],
        )
        history: MetricsHistory | None = self.history
        if history is None:
            self.source.object = ""
            self.plots.objects = [pn.pane.Markdown("No metrics store configured.")]
            return
        self.source.object = f"Metrics from {history.describe()}, the last {self.window_s} s."
        plots = self.attempt(lambda: history.plots(self.window_s))
        if plots is None:
            return
        plotting()
        panes = [
            pn.Column(
                pn.pane.Markdown(f"**{plot.title}** · {_latest(plot)}", margin=(0, 10)),
                pn.pane.HoloViews(_curves(plot), sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
                css_classes=["wb-metric-plot"],
            )
            for plot in plots
        ]
        self.plots.objects = [
            pn.Row(*panes[i : i + 2], sizing_mode="stretch_width") for i in range(0, len(panes), 2)
        ]

    def load_audit(self) -> None:
        tenant = self.audit_tenant.value
        if not tenant:
            return
        entries = self.attempt(
            lambda: self.client.audit(
                tenant, actor=self.audit_actor.value or None, action=self.audit_action.value or None
            )
        )
        if entries is None:
            return
        frame = pd.DataFrame(entries)
        self.audit_table.value = frame

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "## Monitoring",
            self.message,
            pn.Row(self.refresh_button),
            self.health_table,
            self.source,
            self.plots,
            "### Audit log",
            pn.Row(self.audit_tenant, self.audit_actor, self.audit_action, self.audit_button),
            self.audit_table,
            sizing_mode="stretch_width",
        )
