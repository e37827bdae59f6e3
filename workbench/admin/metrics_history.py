"""Where the monitoring page's plots come from: the panel's own scraped store, or Prometheus.

Both answer :meth:`plots` with the same plots (:data:`PLOTS`), each a DataFrame with columns
``time``, ``series`` and ``value``: :class:`StoreHistory` computes them from
:class:`~workbench.admin.metrics_store.MetricsStore` samples, :class:`PrometheusHistory` asks a
Prometheus server's HTTP API (``/api/v1/query_range``) the PromQL for each (``job`` names the
service there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pandas as pd

from workbench.admin.metrics_store import MetricsStore, counter_rate
from workbench.errors import BackendUnavailable, ValidationError

__all__ = ["PLOTS", "MetricsHistory", "Plot", "PrometheusHistory", "StoreHistory"]

REQUESTS = "workbench_http_requests_total"
LATENCY = "workbench_http_request_duration_seconds"
ADAPTERS_ONLINE = "workbench_adapters_online"
PIPELINE_RUNS = "workbench_pipeline_runs_total"
#: bot runs finished, by status: the Bot Service's and its Celery workers' counters
BOT_RUNS = ("workbench_bot_runs_total", "workbench_bot_worker_runs_total")

#: plot title -> PromQL (the Prometheus source); the store source computes the same
PLOTS: dict[str, str] = {
    "requests/s": f"sum by (job) (rate({REQUESTS}[1m]))",
    "latency p50 (s)": f"histogram_quantile(0.5, sum by (job, le) (rate({LATENCY}_bucket[1m])))",
    "latency p95 (s)": f"histogram_quantile(0.95, sum by (job, le) (rate({LATENCY}_bucket[1m])))",
    "5xx/s": f'sum by (job) (rate({REQUESTS}{{status=~"5.."}}[1m]))',
    "up": "up",
    "adapters online": f"sum by (job) ({ADAPTERS_ONLINE})",
    "pipeline runs/s": f"sum by (status) (rate({PIPELINE_RUNS}[5m]))",
    "bot runs/s": 'sum by (status) (rate({__name__=~"' + "|".join(BOT_RUNS) + '"}[5m]))',
}
_COLUMNS = ["time", "series", "value"]


@dataclass(frozen=True)
class Plot:
    """One plot: its title (the y axis) and its samples (time, series, value)."""

    title: str
    frame: pd.DataFrame


class MetricsHistory(Protocol):
    """A source of the monitoring plots over the last ``window_s`` seconds."""

    def describe(self) -> str: ...

    def plots(self, window_s: float) -> list[Plot]: ...


def _frame(frame: pd.DataFrame, series: str, value: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.DataFrame(
        {"time": frame["time"], "series": frame[series].astype(str), "value": frame[value]}
    )


def _label(frame: pd.DataFrame, name: str) -> pd.Series:
    """The value of label ``name`` in the store's ``k=v,...`` labels column."""
    return frame["labels"].str.extract(rf"(?:^|,){name}=([^,]*)")[0].fillna("")


class StoreHistory:
    """The plots from the panel's own store of scraped samples."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store

    def describe(self) -> str:
        return f"the panel's scraped metrics ({self.store.path})"

    def _by_status(self, names: tuple[str, ...], window_s: float) -> pd.DataFrame:
        """Per-second rate of counters ``names``, one series per status label."""
        frames = [self.store.series(name, since_s=window_s) for name in names]
        samples = pd.concat([f for f in frames if not f.empty] or [frames[0]])
        if samples.empty:
            return pd.DataFrame(columns=_COLUMNS)
        # a counter per status and service: the rate per status (summed over services)
        samples = samples.assign(service=samples["service"] + "|" + _label(samples, "status"))
        rates = counter_rate(samples)
        if rates.empty:
            return pd.DataFrame(columns=_COLUMNS)
        rates["status"] = rates["service"].str.split("|").str[1]
        summed = rates.groupby(["time", "status"])["rate"].sum().reset_index()
        return _frame(summed, "status", "rate")

    def plots(self, window_s: float) -> list[Plot]:
        store = self.store
        errors = store.series(REQUESTS, since_s=window_s)
        if not errors.empty:
            errors = errors[_label(errors, "status").str.match(r"5\d\d")]
        online = store.series(ADAPTERS_ONLINE, since_s=window_s)
        return [
            Plot("requests/s", _frame(store.rate(REQUESTS, since_s=window_s), "service", "rate")),
            Plot(
                "latency p50 (s)",
                _frame(
                    store.latency_quantile(LATENCY, 0.5, since_s=window_s), "service", "seconds"
                ),
            ),
            Plot(
                "latency p95 (s)",
                _frame(
                    store.latency_quantile(LATENCY, 0.95, since_s=window_s), "service", "seconds"
                ),
            ),
            Plot("5xx/s", _frame(counter_rate(errors), "service", "rate")),
            Plot("up", _frame(store.series("up", since_s=window_s), "service", "value")),
            Plot("adapters online", _frame(online, "service", "value")),
            Plot("pipeline runs/s", self._by_status((PIPELINE_RUNS,), window_s)),
            Plot("bot runs/s", self._by_status(BOT_RUNS, window_s)),
        ]


class PrometheusHistory:
    """The plots from a Prometheus server's HTTP API (``url``, e.g. ``http://prom:9090``)."""

    def __init__(self, url: str, *, timeout: float = 10.0, points: int = 240) -> None:
        self.url = url.rstrip("/")
        self.points = points
        from workbench.admin.api import shared_tls_context

        self._http = httpx.Client(timeout=timeout, verify=shared_tls_context())

    def describe(self) -> str:
        return f"Prometheus at {self.url}"

    def close(self) -> None:
        self._http.close()

    def query_range(self, promql: str, start: float, end: float, step: float) -> pd.DataFrame:
        """The matrix of ``promql`` over ``[start, end]`` as rows (time, series, value)."""
        url = f"{self.url}/api/v1/query_range"
        params: dict[str, str | float] = {
            "query": promql,
            "start": start,
            "end": end,
            "step": max(step, 1.0),
        }
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"Prometheus at {self.url} did not answer ({type(exc).__name__}: {exc}); check "
                "WORKBENCH_ADMIN_PROMETHEUS_URL or unset it to use the panel's own store"
            ) from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise BackendUnavailable(
                f"{url} answered {response.status_code} without JSON: is "
                f"WORKBENCH_ADMIN_PROMETHEUS_URL={self.url} a Prometheus server?"
            ) from None
        if body.get("status") != "success":
            raise ValidationError(
                f"Prometheus refused {promql!r}: {body.get('errorType')}: {body.get('error')}"
            )
        rows = []
        for result in body["data"]["result"]:
            labels = result.get("metric") or {}
            series = next(
                (str(labels[k]) for k in ("job", "status", "instance") if k in labels), "all"
            )
            for stamp, value in result.get("values") or []:
                rows.append((float(stamp), series, float(value)))
        frame = pd.DataFrame(rows, columns=["ts", "series", "value"])
        frame["time"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame[_COLUMNS]

    def plots(self, window_s: float) -> list[Plot]:
        end = time.time()
        start = end - window_s
        step = window_s / self.points
        return [
            Plot(title, self.query_range(promql, start, end, step))
            for title, promql in PLOTS.items()
        ]
