"""Monitoring page: health of every service, metric history as time plots, the audit log."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
import param

from workbench.admin.metrics_store import MetricsStore, counter_rate
from workbench.admin.views.base import AdminView

__all__ = ["MonitoringView"]

REQUESTS = "workbench_http_requests_total"
LATENCY = "workbench_http_request_duration_seconds"


def _curves(frame: pd.DataFrame, value: str, label: str) -> hv.Overlay | hv.Text:
    if frame.empty:
        return hv.Text(0, 0, f"no {label} samples yet").opts(height=220, responsive=True)
    curves = {
        service: hv.Curve(group, "time", value, label=str(service))
        for service, group in frame.groupby("service")
    }
    return hv.NdOverlay(curves, kdims="service").opts(
        hv.opts.Curve(height=220, responsive=True, tools=["hover"], ylabel=label)
    )


class MonitoringView(AdminView):
    """``/healthz`` + ``/readyz`` table, request rate / latency / errors plots, audit log."""

    store = param.ClassSelector(class_=MetricsStore, allow_None=True, doc="Scraped metrics.")
    window_s = param.Integer(default=3600, doc="Seconds of history plotted.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.health_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
        )
        self.plots = pn.Column(sizing_mode="stretch_width")
        self.refresh_button = pn.widgets.Button(label="Refresh", color="primary")
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.audit_tenant = pn.widgets.Select(label="Tenant", options=list(self.tenants))
        self.audit_actor = pn.widgets.TextInput(label="Who")
        self.audit_action = pn.widgets.TextInput(label="What (action)")
        self.audit_button = pn.widgets.Button(label="Filter audit log")
        self.audit_button.on_click(lambda _e: self.load_audit())
        self.audit_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=260,
            sizing_mode="stretch_width",
            pagination="local",
            page_size=20,
        )
        self.refresh()
        self.load_audit()

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
        if self.store is None:
            self.plots.objects = [pn.pane.Markdown("No metrics store configured.")]
            return
        window = self.window_s
        rate = self.store.rate(REQUESTS, since_s=window)
        errors = self.store.series(REQUESTS, since_s=window)
        if not errors.empty:
            errors = errors[errors["labels"].str.contains(r"status=5\d\d", regex=True)]
        error_rate = counter_rate(errors)
        p50 = self.store.latency_quantile(LATENCY, 0.5, since_s=window)
        p95 = self.store.latency_quantile(LATENCY, 0.95, since_s=window)
        up = self.store.series("up", since_s=window)
        self.plots.objects = [
            pn.pane.HoloViews(_curves(rate, "rate", "requests/s"), sizing_mode="stretch_width"),
            pn.Row(
                pn.pane.HoloViews(
                    _curves(p50, "seconds", "latency p50 (s)"), sizing_mode="stretch_width"
                ),
                pn.pane.HoloViews(
                    _curves(p95, "seconds", "latency p95 (s)"), sizing_mode="stretch_width"
                ),
            ),
            pn.Row(
                pn.pane.HoloViews(
                    _curves(error_rate, "rate", "5xx/s"), sizing_mode="stretch_width"
                ),
                pn.pane.HoloViews(_curves(up, "value", "up"), sizing_mode="stretch_width"),
            ),
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
            self.plots,
            "### Audit log",
            pn.Row(self.audit_tenant, self.audit_actor, self.audit_action, self.audit_button),
            self.audit_table,
            sizing_mode="stretch_width",
        )
