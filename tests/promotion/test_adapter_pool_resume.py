"""End to end: after a reboot (every supervisor and adapter of the local pool killed, a stale pid
in a state file) the Bot Service's start brings back the process of the deployed adapter
promotion, which registers with the Communication Controller again; a retired one stays
stopped; ``workbench promotions resume`` run twice at once starts one process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

import workbench
from tests.promotion.adapter_notebooks import adapter_cells
from tests.promotion.conftest import write_notebook
from tests.promotion.test_adapter_pool import (  # noqa: F401 (the fixture)
    NAME,
    TENANT,
    pid_alive,
    platform,
    pytestmark,
    wait_for,
)
from tests.promotion.test_adapter_promotion import ANSWER
from workbench.bots.credentials import InProcessCredentials
from workbench.bots.settings import BotServiceSettings
from workbench.cli import cli
from workbench.errors import BackendUnavailable, WorkbenchError
from workbench.messaging.local import LocalMessageBus
from workbench.promotion import adapter_pool
from workbench.promotion.adapter_pool import AdapterPool, resume_pools
from workbench.promotion.service import Promotions
from workbench.services.bot_service.app import create_app as bot_service_app
from workbench.settings import Settings
from workbench.testing.http import ServiceServer

RETIRED = "retired-adapter"


def supervisors(state_file: Path) -> list[int]:
    """The live processes whose command line names ``state_file`` (its supervisors)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if str(state_file).encode() in arguments and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def reboot(wb: Any, process: dict[str, Any]) -> None:
    """What a reboot leaves: the supervisor and its adapter gone (SIGKILL to the supervisor's
    session), the state file naming a pid that is now another process (this one)."""
    os.killpg(process["supervisorPid"], signal.SIGKILL)
    spawned = adapter_pool._SPAWNED.pop(process["supervisorPid"], None)  # no handle after a reboot
    if spawned is not None:
        spawned.wait()
    wait_for(
        lambda: not pid_alive(process["supervisorPid"]) and not pid_alive(process["adapterPid"]),
        "the supervisor and the adapter gone",
    )
    state_file = AdapterPool(wb, TENANT)._dir(NAME) / f"v{process['version']}" / "supervisor.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "pid": os.getpid()}))


def test_a_restarted_platform_brings_back_the_deployed_adapter_once(
    platform: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    wb, promotions, options = platform["wb"], platform["promotions"], platform["options"]
    home = Path(wb.home)
    local = wb.tenant(TENANT)

    def process(name: str = NAME) -> dict[str, Any]:
        shown: dict[str, Any] = promotions.show(TENANT, name).get("process") or {}
        return shown

    def adapter_state() -> tuple[Any, Any]:
        adapter = local.entities.get_by_well_known_name(f"promotion.{NAME}").attributes
        return adapter.get("communicationState"), adapter.get("configurationState")

    def registered(adapter_pid: int) -> bool:
        return process().get("adapterPid") == adapter_pid and adapter_state() == (
            "Online",
            "Configured",
        )

    notebook = write_notebook(tmp_path / f"{NAME}.ipynb", adapter_cells(factor=2))
    v1 = promotions.promote(TENANT, notebook, kind="adapter", author="ada", options=options)
    first = v1.report["process"]
    other = write_notebook(tmp_path / f"{RETIRED}.ipynb", [f"%%pipeline --name answer\n{ANSWER}"])
    try:
        promotions.promote(
            TENANT, other, kind="adapter", name=RETIRED, author="ada", options=options
        )
        retired = process(RETIRED)
        assert pid_alive(retired["adapterPid"])
    finally:
        with contextlib.suppress(WorkbenchError):
            promotions.retire(TENANT, RETIRED, by="ada")
    assert not pid_alive(retired["supervisorPid"])
    wait_for(lambda: registered(first["adapterPid"]), "v1 Online and Configured")

    # the reboot; the controller sees the adapter's heartbeats stop
    reboot(wb, first)
    assert process()["state"] == "stopped"
    wait_for(lambda: adapter_state()[0] == "Offline", "Offline after the reboot")

    # the platform starts again: the Bot Service brings the deployed version's process back
    app = bot_service_app(
        Settings(home=home, admin_password=SecretStr("admin-pw-12345")),
        workbench=wb,
        no_auth=True,
        bot_settings=BotServiceSettings(pool_size=0),
        credentials=InProcessCredentials(home),
        bus=LocalMessageBus(),
    )
    bots = ServiceServer(app).start()
    try:
        back = wait_for(
            lambda: (
                (p := process()).get("state") == "running"
                and p.get("adapterPid") not in (None, first["adapterPid"])
                and p
            ),
            "the Bot Service to start the adapter again",
        )
        assert (back["version"], back["resumedBy"]) == (1, "bot-service")
        assert back["resumedAt"]
        assert back["supervisorPid"] != first["supervisorPid"]
        wait_for(lambda: registered(back["adapterPid"]), "the resumed adapter registered")
    finally:
        bots.stop()
    assert pid_alive(back["adapterPid"])  # outlives the service that started it
    assert promotions.show(TENANT, RETIRED).get("process") is None  # the retired one stays down
    state_file = AdapterPool(wb, TENANT)._dir(NAME) / "v1" / "supervisor.json"
    assert supervisors(state_file) == [back["supervisorPid"]]

    # another reboot; `workbench promotions resume` twice at once: one process
    reboot(wb, back)
    command = [sys.executable, "-m", "workbench", "--data-dir", str(home), "promotions", "resume"]
    runs = [
        subprocess.Popen(
            [*command, "--tenant", TENANT, "--json"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    results = [json.loads(output) for output in outputs]
    assert [len(r) for r in results] == [1, 1], results  # the retired one is not listed
    assert sorted(r[0]["action"] for r in results) == ["running", "started"]
    resumed = next(r[0]["process"] for r in results if r[0]["action"] == "started")
    assert resumed["resumedBy"] != "bot-service"
    assert supervisors(state_file) == [resumed["supervisorPid"]]
    assert process()["adapterPid"] == resumed["adapterPid"]
    wait_for(lambda: registered(resumed["adapterPid"]), "the hand-resumed adapter registered")

    # a third resume keeps it; an unknown tenant is refused with exit status 1
    again = resume_pools(wb, [TENANT])
    assert [(r["action"], r["process"]["supervisorPid"]) for r in again] == [
        ("running", resumed["supervisorPid"])
    ]
    unknown = subprocess.run(
        [*command, "--tenant", "nope"], check=False, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 1
    assert "nope" in unknown.stderr


def test_resume_reports_a_process_that_does_not_start_and_skips_one_promoted_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[int] = []

    def start(pool: AdapterPool, name: str, version: int, *args: Any) -> int:
        starts.append(version)
        if len(starts) > 1:
            raise BackendUnavailable(f"the process of adapter promotion {name}@1 did not start")
        return 2**22 + version  # no such process: gone, as after a reboot

    monkeypatch.setattr(AdapterPool, "_start", start)
    home = tmp_path / "wb"
    notebook = write_notebook(tmp_path / f"{NAME}.ipynb", [f"%%pipeline --name answer\n{ANSWER}"])
    with workbench.open(home) as wb:
        wb.tenants.create(TENANT)
        promotions = Promotions(wb)
        options = {"no_auth": True, "controller_url": "http://127.0.0.1:9"}
        promotions.promote(TENANT, notebook, kind="adapter", author="ada", options=options)
        promotions.promote(
            TENANT, notebook, kind="adapter", name="by-hand", author="ada", options={"start": False}
        )
    done = CliRunner().invoke(
        cli, ["--data-dir", str(home), "promotions", "resume", "--json"], catch_exceptions=False
    )
    assert done.exit_code == 1, done.output
    results = {r["name"]: r for r in json.loads(done.stdout)}
    assert results[NAME]["action"] == "failed"
    assert "meter-adapter@1 did not start" in results[NAME]["error"]
    assert results["by-hand"]["action"] == "skipped"
    assert "--no-start" in results["by-hand"]["reason"]
    assert "error: not resumed: energy/meter-adapter: " in done.stderr
    assert starts == [1, 1]
