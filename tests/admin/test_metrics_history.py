"""The monitoring plots' sources: the panel's own store (adapters online, pipeline and bot runs
per status from scraped counters) and a real Prometheus server (``/usr/bin/prometheus``)
scraping a real Asset Repository, queried through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from workbench.admin.metrics_history import PrometheusHistory, StoreHistory
from workbench.admin.metrics_store import MetricsStore, parse_metrics
from workbench.errors import BackendUnavailable
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer, free_port
from workbench.testing.servers import in_ci

PROMETHEUS = "/usr/bin/prometheus"
TOKEN = "metrics-history-token"
CONTROLLER = """# TYPE workbench_adapters_online gauge
workbench_adapters_online %(online)s
# TYPE workbench_pipeline_runs counter
workbench_pipeline_runs_total{status="Completed"} %(ok)s
workbench_pipeline_runs_total{status="Failed"} %(failed)s
"""
WORKER = """# TYPE workbench_bot_worker_runs counter
workbench_bot_worker_runs_total{status="succeeded"} %(runs)s
"""


def _plots(history: Any, window_s: float) -> dict[str, Any]:
    return {plot.title: plot.frame for plot in history.plots(window_s)}


def test_store_history_plots_adapters_online_and_runs_per_status(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.db")
    now = time.time()
    for ts, values in ((now - 20, (1, 0, 0, 0)), (now - 10, (2, 30, 10, 5))):
        online, ok, failed, runs = values
        store.add(
            "communication-controller",
            parse_metrics(CONTROLLER % {"online": online, "ok": ok, "failed": failed}),
            ts,
        )
        store.add("bot-worker", parse_metrics(WORKER % {"runs": runs}), ts)
    plots = _plots(StoreHistory(store), 3600)
    assert plots["adapters online"]["value"].tolist() == [1.0, 2.0]
    runs = plots["pipeline runs/s"].set_index("series")["value"].to_dict()
    assert runs == {"Completed": 3.0, "Failed": 1.0}  # per second over the 10 s between scrapes
    assert plots["bot runs/s"].set_index("series")["value"].to_dict() == {"succeeded": 0.5}
    assert plots["requests/s"].empty  # nothing scraped for it: the page says "no samples yet"
    store.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A Prometheus scraping an Asset Repository every second: (Prometheus URL, API URL)."""
    if shutil.which(PROMETHEUS) is None:
        message = f"needs a real Prometheus at {PROMETHEUS} (apt-get install prometheus)"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    with (
        workbench.open(tmp_path / "wb") as wb,
        ServiceServer(create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))) as api,
    ):
        target = api.url.split("://", 1)[1]
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: asset-repository\n    static_configs: [{{targets: ['{target}']}}]\n",
            encoding="utf-8",
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("w")
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, process)
            yield url, api.url
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def _until(
    check: Any, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "prometheus exited"
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("timed out waiting for prometheus")


def test_prometheus_history_queries_the_http_api(prometheus: tuple[str, str]) -> None:
    url, api = prometheus
    history = PrometheusHistory(url)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def request_rate_seen() -> bool:
        for _ in range(5):  # traffic for the rate to show
            httpx.get(f"{api}/tenants", headers=headers, timeout=5)
        rate = _plots(history, 300)["requests/s"]
        return bool(not rate.empty and rate["value"].max() > 0)

    _until(request_rate_seen, timeout=90)
    plots = _plots(history, 300)
    assert set(plots["requests/s"]["series"]) == {"asset-repository"}  # the job names it
    assert plots["up"]["value"].iloc[-1] == 1.0
    assert plots["latency p95 (s)"]["value"].dropna().ge(0).all()
    assert plots["adapters online"].empty  # this job has no adapters gauge
    assert "Prometheus at" in history.describe()
    history.close()
    gone = PrometheusHistory(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable, match="WORKBENCH_ADMIN_PROMETHEUS_URL"):
        gone.plots(60)
    gone.close()
