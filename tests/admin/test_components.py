"""The Admin Panel's components without a browser: the metrics history (retention, counter
rates, latency quantiles from histogram buckets), the tenant tree, the pages a token's roles
open, and the development dashboard script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("panel")

from workbench.admin.api import AdminApi
from workbench.admin.metrics_store import MetricsStore, parse_metrics
from workbench.admin.shell import AdminShell
from workbench.admin.views.tenants import tenant_tree

EXPOSITION = """# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{route="/a"} %(a)s
requests_total{route="/b"} %(b)s
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.01"} %(fast)s
latency_seconds_bucket{le="0.1"} %(slow)s
latency_seconds_bucket{le="+Inf"} %(slow)s
latency_seconds_count %(slow)s
latency_seconds_sum 1.0
"""


def _scrape(store: MetricsStore, ts: float, **values: float) -> None:
    store.add("asset-repository", parse_metrics(EXPOSITION % values), ts)


def test_metrics_history_rates_quantiles_and_retention(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.db", retention_s=100)
    now = 1_800_000_000.0
    _scrape(store, now - 20, a=0, b=0, fast=0, slow=0)
    _scrape(store, now - 10, a=40, b=60, fast=90, slow=100)  # 100 requests in 10 s
    rate = store.rate("requests_total", since_s=1e9)
    assert rate["rate"].tolist() == [10.0]
    p50 = store.latency_quantile("latency_seconds", 0.5, since_s=1e9)
    assert 0 < p50["seconds"].iloc[0] <= 0.01  # 90 of 100 were under 10 ms
    p95 = store.latency_quantile("latency_seconds", 0.95, since_s=1e9)
    assert 0.01 < p95["seconds"].iloc[0] <= 0.1
    # older than the retention: pruned on the next write
    _scrape(store, now + 200, a=50, b=60, fast=95, slow=110)
    assert store.series("requests_total", since_s=1e12, now=now + 200)["value"].tolist() == [
        50.0,
        60.0,
    ]
    store.close()


def test_tenant_tree_puts_children_under_their_parent() -> None:
    tree = tenant_tree(
        [
            {"id": "plant-b", "parent": "group"},
            {"id": "group", "parent": None},
            {"id": "plant-a", "parent": "group"},
            {"id": "alone", "parent": "gone"},  # parent not visible: shown at the top
        ]
    )
    assert tree["id"].tolist() == ["alone", "group", "plant-a", "plant-b"]
    assert tree["tenant"].tolist()[2].endswith("\u2514 plant-a")


def _token(**claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


def test_pages_follow_the_roles_and_platform_pages_need_the_system_tenant() -> None:
    owner = AdminApi(
        identity_url="http://127.0.0.1:9",
        api_url="http://127.0.0.1:9",
        token=_token(
            tenant_id="demo", allowed_tenants=["demo"], roles=["TenantManagement", "UserManagement"]
        ),
    )
    shell = AdminShell(api=owner, store=None)
    assert shell.pages() == ["Tenants", "Users", "Monitoring", "Models", "Data", "Operations"]
    assert shell.tenants == ["demo"]
    reader = AdminApi(
        identity_url="http://127.0.0.1:9",
        api_url="http://127.0.0.1:9",
        token=_token(tenant_id="demo", allowed_tenants=["demo"], roles=[]),
    )
    assert AdminShell(api=reader, store=None).pages() == ["Data"]
    owner.close()
    reader.close()


def test_the_development_dashboard_script_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_API_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WORKBENCH_API_TOKEN", raising=False)
    script = Path(__file__).resolve().parents[2] / "dashboards" / "admin.py"
    # in a process of its own: ``servable()`` adds the page to Bokeh's global document, which
    # a later test's in-process Panel server would then see as the current one
    code = f"import runpy; ns = runpy.run_path({str(script)!r}); assert 'AdminShell' in ns"
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_platform_admin_manages_tenants_but_reads_only_the_data_the_token_allows() -> None:
    admin = AdminApi(
        identity_url="http://127.0.0.1:9",
        api_url="http://127.0.0.1:9",
        token=_token(tenant_id="system", allowed_tenants=["system"], roles=["TenantManagement"]),
    )
    shell = AdminShell(api=admin, store=None)
    assert shell.platform
    assert shell.data_tenants == []
    refused = shell.page("Data")
    assert "allows no tenant's data" in refused.object
    admin.close()


def test_model_cache_fetches_once_per_stamp_and_again_when_the_model_changes() -> None:
    import threading

    from workbench.admin.model_cache import ModelCache
    from workbench.ck.model import CkModel

    cache = ModelCache()
    fetched: list[CkModel] = []
    gate = threading.Event()

    def fetch() -> CkModel:
        gate.wait(timeout=10)
        model = CkModel.__new__(CkModel)
        fetched.append(model)
        return model

    got: list[CkModel] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(("api", "demo"), (1, 0), fetch)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(fetched) == 1  # eight sessions at once: one fetch, the others wait for it
    assert all(model is fetched[0] for model in got)
    assert cache.get(("api", "demo"), (1, 0), fetch) is fetched[0]
    changed = cache.get(("api", "demo"), (2, 0), fetch)  # a library import changed the stamp
    assert len(fetched) == 2
    assert changed is fetched[1]
    assert cache.get(("api", "other"), (2, 0), fetch) is fetched[2]  # per tenant
