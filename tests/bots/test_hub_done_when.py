"""Issue 15's "done when", end to end in the real hub: a new user writes a notebook that reads
entities and writes a daily aggregate, promotes it as a bot on a cron from her tenant kernel,
logs out; the history shows the scheduled runs with their rendered notebooks; a failing
version alerts by e-mail and is rolled back with one command. The platform:
:mod:`tests.bots.hub_platform` (its own for this module)."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bots.hub_platform import (
    DANA_PASSWORD,
    TENANT,
    TOTAL_KWH,
    Platform,
    login_and_spawn,
    notebook,
    running_platform,
    save_and_promote,
    wait_for,
)

pytestmark = [pytest.mark.hub, pytest.mark.integration, pytest.mark.slow]

AGGREGATE = [
    "import datetime\n"
    "meters = wb.entities.find('Demo.Energy/EnergyMeter', first=1000).items\n"
    "total = round(sum(m.attributes.get('energyImported', 0.0) for m in meters), 3)\n"
    "day = datetime.datetime.now(datetime.UTC).date().isoformat()\n"
    "target = wb.entities.get_by_well_known_name(site)\n"
    "summary = f'{day}: {total} kWh imported by {len(meters)} meters'\n"
    "wb.entities.update(target.rt_id, {'description': summary})\n"
    "wb.bot.output('total_kwh', total)\n"
    "print('daily aggregate', summary)"
]
#: the second version misspells the attribute
BROKEN = [AGGREGATE[0].replace("m.attributes.get('energyImported', 0.0)", "m.attributes['kwh']")]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home: Path = tmp_path_factory.mktemp("hub-done-when") / "wb"
    with running_platform(home) as running:
        yield running


def test_a_new_user_promotes_a_daily_aggregate_bot_and_rolls_a_broken_one_back(
    platform: Platform,
) -> None:
    stack = platform.stack
    # the notebook carries its bot settings: a 6-field cron (every 2 s) and the alert address
    # (a quoted `%promote --cron "..."` keeps its quotes: the magic's parser does not strip them)
    settings = {"cron": "*/2 * * * * *", "alert_emails": ["ops@example.com"]}
    line = "--kind bot --name daily-aggregate"
    session = login_and_spawn(stack, "dana", DANA_PASSWORD)
    try:
        good = notebook(AGGREGATE, "site = 'site-linz'", **settings)
        promoted = save_and_promote(session, "05-daily-aggregate.ipynb", good, line)
        assert "promoted daily-aggregate@1 (bot)" in promoted.stdout
        session.http.get(f"{stack.hub_url}/hub/logout")
        logged_out = time.time()
        runs = platform.scheduled_runs_since("daily-aggregate", logged_out, 2)
        day = datetime.datetime.now(datetime.UTC).date().isoformat()
        summary = f"{day}: {TOTAL_KWH} kWh imported by 3 meters"
        platform.assert_succeeded_with_html("daily-aggregate", runs, f"daily aggregate {summary}")
        assert [r["outputs"]["total_kwh"] for r in runs] == [TOTAL_KWH, TOTAL_KWH]
        assert {r["version"] for r in runs} == {1}
        site = stack.workbench.tenant(TENANT).entities.get_by_well_known_name("site-linz")
        assert site.attributes["description"] == summary
        promotion = platform.bot_api("GET", "/promotions/daily-aggregate").json()
        assert promotion["author"] == stack.directory.get_user(TENANT, "dana").id

        # she comes back with a broken version (--no-run: its validation run would refuse it);
        # its scheduled runs fail and mail the alert
        session.close()
        session = login_and_spawn(stack, "dana", DANA_PASSWORD)
        broken = notebook(BROKEN, "site = 'site-linz'", **settings)
        save_and_promote(session, "05-daily-aggregate.ipynb", broken, f"{line} --no-run")
        promoted_broken = time.time()
        failed = platform.scheduled_runs_since("daily-aggregate", promoted_broken)[0]
        assert failed["status"] == "failed", failed
        assert failed["version"] == 2
        assert "KeyError" in (failed["error"] or "")
        mail = wait_for(lambda: platform.mailbox.messages, "the failure e-mail", 60)[0]
        assert mail["To"] == "ops@example.com"
        assert "daily-aggregate" in mail["Subject"]
        assert "failed" in mail["Subject"]

        # one command rolls it back; the next scheduled run is version 1 and succeeds
        rollback = subprocess.run(
            [
                *(sys.executable, "-m", "workbench", "promotions", "rollback"),
                *("--tenant", TENANT, "daily-aggregate", "--data-dir", str(stack.home)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert rollback.returncode == 0, rollback.stderr
        assert "rolled back daily-aggregate to daily-aggregate@1" in rollback.stdout
        wait_for(
            lambda: platform.bot_api("GET", "/bots/daily-aggregate").json()["version"] == 1,
            "the Bot Service to deploy version 1 again",
        )
        rolled_back = time.time()
        again = platform.scheduled_runs_since("daily-aggregate", rolled_back)
        assert again[0]["version"] == 1
        platform.assert_succeeded_with_html("daily-aggregate", again, f"daily aggregate {summary}")
    finally:
        platform.bot_api("POST", "/bots/daily-aggregate/disable")
        session.close()
