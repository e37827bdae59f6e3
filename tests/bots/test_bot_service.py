"""The Bot Service end to end: scheduled runs write entities through the Asset Repository under
the bot's own token; failures, dead kernels, alerts, rollback."""

from __future__ import annotations

from typing import Any

import httpx

from tests.bots.conftest import TENANT, Platform, bot_notebook, promote
from workbench.identity.audit import AuditLog

AGGREGATE = [
    "meters = wb.entities.find('Demo.Energy/EnergyMeter', first=100).items\n"
    "site = wb.entities.create('Demo.Energy/Site', {'name': f'{label}: {len(meters)} meters'})\n"
    "wb.bot.output('meters', len(meters))\n"
    "wb.bot.output('site', site.rt_id)\n"
    "print('aggregated', len(meters))"
]


def runs(platform: Platform, bot: str) -> list[dict[str, Any]]:
    with platform.http() as http:
        response = http.get(f"/tenants/{TENANT}/bots/{bot}/runs")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_a_scheduled_bot_writes_entities_with_its_own_token(platform: Platform) -> None:
    notebook = bot_notebook(AGGREGATE, parameters="label = 'daily'")
    # not about the validation run (test_a_failing_version_...): no kernel run at promotion
    promoted = promote(platform, "daily", notebook, every="2s", timeout=300, no_run=True)
    assert promoted["ref"] == "daily@1"
    assert promoted["author"] == "client:author"
    assert promoted["parameters"] == {"label": "daily"}

    done = platform.wait_for(
        lambda: [r for r in runs(platform, "daily") if r["status"] == "succeeded"], timeout=240
    )
    run = done[-1]
    assert run["trigger"] == "schedule"
    assert run["outputs"]["meters"] == 2
    site = platform.workbench.tenant(TENANT).entities.get(run["outputs"]["site"])
    assert site.attributes["name"] == "daily: 2 meters"
    # the write went through the Asset Repository as the bot's client, not the author
    actors = {e.actor for e in AuditLog.for_workbench(platform.workbench).query(TENANT)}
    assert "client:bot.energy.daily" in actors
    with platform.http() as http:
        html = http.get(f"/tenants/{TENANT}/bots/daily/runs/{run['run_id']}/html")
        log = http.get(f"/tenants/{TENANT}/bots/daily/runs/{run['run_id']}/log")
        listed = http.get(f"/tenants/{TENANT}/bots").json()
    assert html.status_code == 200
    assert "aggregated 2" in html.text
    assert "aggregated 2" in log.text
    assert listed[0]["name"] == "daily"
    assert listed[0]["schedule"] == "every 2 s"
    # the tenant's GraphQL schema lists bots and runs too
    query = "{ bots { name schedule runs(limit: 500) { status trigger outputs } } }"
    answer = httpx.post(
        f"{platform.api_url}/tenants/{TENANT}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {platform.author_token}"},
        timeout=60,
    ).json()
    assert "errors" not in answer, answer
    bots = answer["data"]["bots"]
    assert [(b["name"], b["schedule"]) for b in bots] == [("daily", "every 2 s")]
    assert {"status": "succeeded", "trigger": "schedule", "outputs": run["outputs"]} in bots[0][
        "runs"
    ]


def test_a_failing_version_alerts_and_is_rolled_back(platform: Platform, smtp: Any) -> None:
    good = bot_notebook(AGGREGATE, parameters="label = 'ok'")
    promoted = promote(platform, "agg", good, timeout=300)
    # the validation run: the notebook ran top to bottom in a fresh kernel before deploying
    assert promoted["details"]["validationRun"]["seconds"] > 0
    assert runs(platform, "agg") == []  # the validation run is not a run of the bot
    bad = bot_notebook(["raise RuntimeError('sensor table missing')"])
    options = {"timeout": 300, "alert_emails": ["ops@example.com"]}
    with platform.http() as http:
        body = {"notebook": bad, "kind": "bot", "name": "agg", "options": options}
        refused = http.post(f"/tenants/{TENANT}/promotions", json=body)
        assert refused.status_code == 400, refused.text
        assert "did not run top to bottom" in refused.json()["message"]
        assert "sensor table missing" in refused.json()["message"]
        assert http.get(f"/tenants/{TENANT}/promotions/agg").json()["versions"] == [1]
    # --no-run deploys it anyway (the failing version whose runs alert)
    promote(platform, "agg", bad, **options, no_run=True)
    with platform.http() as http:
        failed = http.post(f"/tenants/{TENANT}/bots/agg/runs", json={"wait": True}).json()
    assert failed["status"] == "failed"
    assert failed["version"] == 2
    assert "RuntimeError: sensor table missing" in failed["error"]
    mail = platform.wait_for(lambda: smtp.messages, timeout=30)[0]
    assert mail["To"] == "ops@example.com"
    assert "agg" in mail["Subject"]
    assert "failed" in mail["Subject"]

    with platform.http() as http:
        rolled = http.post(f"/tenants/{TENANT}/promotions/agg/rollback").json()
        assert rolled["ref"] == "agg@1"
        again = http.post(f"/tenants/{TENANT}/bots/agg/runs", json={"wait": True}).json()
    assert again["status"] == "succeeded"
    assert again["version"] == 1


def test_a_killed_kernel_fails_the_run_at_once_with_the_signal(platform: Platform) -> None:
    notebook = bot_notebook(
        [
            "import os, signal, time\nblob = bytearray(50_000_000)\ntime.sleep(0.5)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\ntime.sleep(600)"
        ]
    )
    promote(platform, "oom", notebook, timeout=300, no_run=True)
    with platform.http() as http:
        record = http.post(f"/tenants/{TENANT}/bots/oom/runs", json={"wait": True}).json()
    assert record["status"] == "failed"
    assert record["reason"] == "kernel-died"
    assert "SIGKILL" in record["error"]
    assert record["details"]["lastMemoryBytes"] > 10_000_000
    assert record["seconds"] < 120  # not the 600 s the cell would sleep


def test_timeout_and_retries(platform: Platform) -> None:
    notebook = bot_notebook(["import time\ntime.sleep(600)"])
    promote(platform, "slow", notebook, timeout="4s", retries=1, retry_backoff="0s", no_run=True)
    with platform.http() as http:
        record = http.post(f"/tenants/{TENANT}/bots/slow/runs", json={"wait": True}).json()
    assert record["status"] == "timed-out"
    assert record["attempts"] == 2
