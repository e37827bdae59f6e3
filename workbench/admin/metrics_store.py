"""Service metrics with history: Prometheus ``/metrics`` scraped into a small SQLite store.

The Admin Panel's monitoring plots show what happened before the page was opened, so samples
are kept (with a retention) rather than held by the page. :class:`MetricsScraper` runs in the
Admin Panel's process, scrapes every watched service every ``interval`` seconds and writes one
row per sample; :meth:`MetricsStore.series` reads a metric back as a DataFrame. In production
a Prometheus server does this job: point the panel at it instead (``admin_prometheus_url``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from workbench.admin.api import ServiceEndpoint, shared_tls_context

__all__ = ["MetricsScraper", "MetricsStore", "counter_rate", "parse_metrics"]

log = logging.getLogger("workbench.admin.metrics")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    ts REAL NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_name ON samples (name, ts);
"""


class MetricsStore:
    """Samples ``(time, service, metric name, labels, value)`` in SQLite (WAL), pruned by age."""

    def __init__(self, path: Path | str, *, retention_s: float = 24 * 3600) -> None:
        self.path = str(path)
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def add(self, service: str, samples: Iterable[tuple[str, str, float]], ts: float) -> int:
        rows = [(ts, service, name, labels, value) for name, labels, value in samples]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM samples WHERE ts < ?", (ts - self.retention_s,))
            self._db.execute("COMMIT")
        return len(rows)

    def series(self, name: str, *, since_s: float = 3600, now: float | None = None) -> pd.DataFrame:
        """Samples of metric ``name`` in the last ``since_s`` seconds: columns time, service,
        labels, value."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, service, labels, value FROM samples WHERE name = ? AND ts >= ? "
                "ORDER BY ts",
                (name, now - since_s),
            ).fetchall()
        frame = pd.DataFrame(rows, columns=["ts", "service", "labels", "value"])
        frame["time"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame.drop(columns=["ts"])

    def rate(self, name: str, *, since_s: float = 3600) -> pd.DataFrame:
        """Per-second rate of a counter, summed over labels, per service and scrape."""
        return counter_rate(self.series(name, since_s=since_s))

    def latency_quantile(self, name: str, q: float, *, since_s: float = 3600) -> pd.DataFrame:
        """Quantile ``q`` of a histogram (``name`` without ``_bucket``) between scrapes, per
        service: linear interpolation within the bucket holding the q-th observation."""
        frame = self.series(f"{name}_bucket", since_s=since_s)
        if frame.empty:
            return pd.DataFrame(columns=["time", "service", "seconds"])
        frame["le"] = frame["labels"].str.extract(r"(?:^|,)le=([^,]+)")[0].astype(float)
        totals = frame.groupby(["service", "time", "le"], as_index=False)["value"].sum()
        out = []
        for service, group in totals.groupby("service"):
            wide = group.pivot(index="time", columns="le", values="value").sort_index()
            deltas = wide.diff().dropna()
            bounds = list(wide.columns)
            for time_, row in deltas.iterrows():
                total = row.iloc[-1]
                if total <= 0:
                    continue
                target, lower, below = q * total, 0.0, 0.0
                value = bounds[-2] if len(bounds) > 1 else 0.0
                for bound, count in zip(bounds, row, strict=True):
                    if count >= target:
                        if bound == float("inf"):
                            value = lower
                        else:
                            share = (target - below) / max(count - below, 1e-12)
                            value = lower + (bound - lower) * share
                        break
                    lower, below = bound, count
                out.append({"time": time_, "service": service, "seconds": value})
        return pd.DataFrame(out, columns=["time", "service", "seconds"])

    def names(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM samples")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def counter_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-second rate between scrapes of counter samples (summed over labels) per service."""
    if frame.empty:
        return pd.DataFrame(columns=["time", "service", "rate"])
    totals = frame.groupby(["service", "time"])["value"].sum().reset_index()
    parts = []
    for service, unsorted in totals.groupby("service"):
        group = unsorted.sort_values("time")
        rate = group["value"].diff().clip(lower=0) / group["time"].diff().dt.total_seconds()
        parts.append(pd.DataFrame({"time": group["time"], "service": service, "rate": rate}))
    return pd.concat(parts).dropna()


def parse_metrics(text: str) -> list[tuple[str, str, float]]:
    """``(sample name, labels as k=v,..., value)`` of a Prometheus text exposition."""
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out.append((sample.name, labels, float(sample.value)))
    return out


class MetricsScraper:
    """Scrapes ``/metrics`` of ``services`` into ``store`` every ``interval`` seconds (thread)."""

    def __init__(
        self, store: MetricsStore, services: list[ServiceEndpoint], *, interval: float = 5.0
    ) -> None:
        self.store = store
        self.services = services
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scrape_once(self) -> int:
        now = time.time()
        count = 0
        for endpoint in self.services:
            up = 0.0
            try:
                response = httpx.get(
                    f"{endpoint.url}/metrics", timeout=5, verify=shared_tls_context()
                )
                if response.status_code == 200:
                    count += self.store.add(endpoint.name, parse_metrics(response.text), now)
                    up = 1.0
            except (httpx.HTTPError, ValueError) as exc:
                log.info("scrape of %s failed: %s", endpoint.name, type(exc).__name__)
            self.store.add(endpoint.name, [("up", "", up)], now)
        return count

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scrape_once()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
