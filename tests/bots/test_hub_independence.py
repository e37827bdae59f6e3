"""Bots outlive their author's hub session (issue 15: "runs continue when the author logs out,
the author's Jupyter server is culled, or the hub restarts — a test for each").

alice promotes ``pulse`` (every 3 s) with ``%promote`` from a tenant kernel of her server in a
real JupyterHub; then she logs out, an idle culler stops her server, and the hub is killed and
started again. After each event the Bot Service's run history (its REST API, read by a client
of its own) shows new scheduled runs that succeeded, with their rendered notebooks: the Bot
Service is a process of its own, holds the bot's own client credentials (not her token) and
runs the notebook in kernels it starts itself. The platform: :mod:`tests.bots.hub_platform`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bots.hub_platform import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    TENANT,
    Platform,
    login_and_spawn,
    notebook,
    running_platform,
    save_and_promote,
    wait_for,
)
from workbench.hub.session import HubSession

pytestmark = [pytest.mark.hub, pytest.mark.integration, pytest.mark.slow]

PULSE = notebook(
    [
        "n = wb.entities.count('Demo.Energy/EnergyMeter')\n"
        "wb.bot.output('meters', n)\n"
        "print(f'{label}: {n} meters')"
    ],
    parameters="label = 'pulse'",
)
#: what each run of pulse prints (the tenant has three meters), in the run's HTML
PRINTED = "pulse: 3 meters"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home: Path = tmp_path_factory.mktemp("hub-bots") / "wb"
    with running_platform(home) as running:
        yield running


@pytest.fixture(scope="module")
def pulse(platform: Platform) -> Iterator[HubSession]:
    """alice, logged in with her server running, has promoted ``pulse`` (every 3 s) from it."""
    session = login_and_spawn(platform.stack, "alice", ALICE_PASSWORD)
    try:
        # --no-run: no validation run before the schedule starts (the scheduled runs check it)
        result = save_and_promote(session, "pulse.ipynb", PULSE, "--kind bot --every 3s --no-run")
        assert f"promoted pulse@1 (bot) into tenant {TENANT}" in result.stdout
        bot = platform.bot_api("GET", "/bots/pulse").json()
        assert bot["schedule"] == "every 3 s", bot
        assert bot["enabled"] is True, bot
        yield session
    finally:
        platform.bot_api("POST", "/bots/pulse/disable")
        session.close()


def test_runs_go_on_after_the_author_logs_out(platform: Platform, pulse: HubSession) -> None:
    assert pulse.api("GET", "/user").status_code == 200
    pulse.http.get(f"{platform.stack.hub_url}/hub/logout")
    assert pulse.api("GET", "/user").status_code == 403  # the hub forgot her
    logged_out = time.time()
    runs = platform.scheduled_runs_since("pulse", logged_out, 2)
    platform.assert_succeeded_with_html("pulse", runs, PRINTED)
    assert [r["outputs"] for r in runs] == [{"meters": 3}, {"meters": 3}]
    # promoted under her token (the author is her user id), run under the bot's own
    promotion = platform.bot_api("GET", "/promotions/pulse").json()
    assert promotion["author"] == platform.stack.directory.get_user(TENANT, "alice").id


def test_runs_go_on_after_the_authors_server_is_culled(
    platform: Platform, pulse: HubSession
) -> None:
    stack = platform.stack
    user = "alice@acme"
    with HubSession(stack.hub_url) as admin:
        admin.login("system", "admin", ADMIN_PASSWORD)
        culler = admin.api(
            "POST",
            f"/users/{admin.user}/tokens",
            json={"note": "idle culler", "scopes": ["list:users", "admin:servers"]},
        )
        assert culler.status_code == 201, culler.text
        token = culler.json()["token"]
    hub_api = httpx.Client(
        base_url=f"{stack.hub_url}/hub/api", headers={"Authorization": f"token {token}"}, timeout=60
    )
    with hub_api:
        # what jupyterhub-idle-culler does: list the ready servers, DELETE the idle one
        ready = hub_api.get("/users", params={"state": "ready"}).json()
        assert user in {u["name"] for u in ready}
        stopped = hub_api.delete(f"/users/{user}/server")
        assert stopped.status_code in (202, 204), stopped.text
        wait_for(
            lambda: not hub_api.get(f"/users/{user}").json()["servers"],
            "the culled server to be gone",
            90,
        )
    culled = time.time()
    runs = platform.scheduled_runs_since("pulse", culled)
    platform.assert_succeeded_with_html("pulse", runs, PRINTED)


def test_runs_go_on_while_the_hub_is_down_and_after_it_restarts(
    platform: Platform, pulse: HubSession
) -> None:
    stack = platform.stack
    hub = stack.hub
    assert hub is not None
    assert hub.process is not None
    hub.process.send_signal(signal.SIGKILL)  # a crash: no clean shutdown
    hub.process.wait(30)
    killed = time.time()
    down = platform.scheduled_runs_since("pulse", killed)
    assert hub.process.poll() is not None  # that one ran with no hub at all
    platform.assert_succeeded_with_html("pulse", down, PRINTED)

    hub.stop()  # closes the log of the killed one
    hub.start(timeout=120)
    restarted = time.time()
    after = platform.scheduled_runs_since("pulse", restarted, 2)
    platform.assert_succeeded_with_html("pulse", after, PRINTED)
    # the restarted hub works: she logs in again
    with HubSession(stack.hub_url) as session:
        session.login(TENANT, "alice", ALICE_PASSWORD)
        assert session.api("GET", "/user").json()["name"] == "alice@acme"
    bot = platform.bot_api("GET", "/bots/pulse").json()
    assert bot["enabled"] is True
