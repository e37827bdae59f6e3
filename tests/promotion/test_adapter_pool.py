"""End to end: a promoted adapter notebook runs in the local pool as a real ``workbench adapter
run`` process (with the notebook's custom node), registers with a real Communication
Controller with a client-credentials token of its own, and its pipeline's output reaches the
tenant through the Asset Repository. A new version replaces the process, a rollback brings the
earlier version's back, a crashed adapter is restarted with backoff (and the failure shows in
``promotions show``), retiring stops it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1
from tests.promotion.adapter_notebooks import adapter_cells
from tests.promotion.conftest import write_notebook
from tests.promotion.test_adapter_promotion import ANSWER
from workbench.cli import cli
from workbench.client.remote import RemoteTenant
from workbench.errors import BackendUnavailable, WorkbenchError
from workbench.identity.directory import Directory
from workbench.identity.verification import JwtVerifier, RemoteJwks
from workbench.messaging.local import LocalMessageBus
from workbench.promotion.adapter_pool import AdapterPool
from workbench.promotion.service import Promotions
from workbench.runtime.files import import_runtime_file
from workbench.services.asset_repository.app import create_app as asset_repository_app
from workbench.services.auth import JwtAuthenticator
from workbench.services.communication_controller.app import create_app as controller_app
from workbench.services.identity.app import create_app as identity_app
from workbench.settings import Settings
from workbench.testing.http import DeferredApp, ServiceServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "energy"
NAME = "meter-adapter"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone as far as we care
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Identity, Communication Controller and Asset Repository on one data directory (in this
    process, as the other communication tests); the adapters are processes of their own."""
    home = tmp_path / "wb"
    wb = workbench.open(home)
    tenant = wb.tenants.create(TENANT)
    tenant.ck.import_library(DEMO_LIBRARY)
    import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
    deferred = DeferredApp()
    identity = ServiceServer(deferred)
    settings = Settings(
        home=home, identity_issuer=identity.url, admin_password=SecretStr("admin-pw-12345")
    )
    deferred.app = identity_app(settings, workbench=wb, announce=False)
    identity.start()
    verifier = JwtVerifier(
        identity.url, settings.identity_audience, RemoteJwks(identity.url + "/jwks")
    )
    auth = JwtAuthenticator(verifier)
    controller = ServiceServer(
        controller_app(
            settings,
            workbench=wb,
            auth=auth,
            bus=LocalMessageBus(),
            heartbeat_seconds=0.5,
            offline_after_seconds=2.0,
        )
    ).start()
    assets = ServiceServer(asset_repository_app(settings, workbench=wb, auth=auth)).start()
    _, secret = Directory.for_workbench(wb).create_client(
        TENANT,
        "pool-test",
        grant_types=["client_credentials"],
        scopes=["workbench_api"],
        roles=["Development"],
    )
    token = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials", "scope": "workbench_api"},
        auth=("pool-test", str(secret)),
        timeout=30,
    ).json()["access_token"]
    promotions = Promotions(wb)
    remote = RemoteTenant(assets.url, TENANT, token=token)
    try:
        yield {
            "wb": wb,
            "promotions": promotions,
            "controller": controller.url,
            "remote": remote,
            "headers": {"Authorization": f"Bearer {token}"},
            "options": {
                "controller_url": controller.url,
                "api_url": assets.url,
                "identity_url": identity.url,
            },
        }
    finally:
        # never leave an adapter process behind, whatever failed (NotFound: nothing promoted)
        with contextlib.suppress(WorkbenchError):
            promotions.retire(TENANT, NAME, by="test")
        remote.close()
        assets.stop()
        controller.stop()
        identity.stop()
        wb.close()


def test_the_pool_runs_replaces_restarts_and_stops_the_adapter_process(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    wb, promotions = platform["wb"], platform["promotions"]
    local = wb.tenant(TENANT)
    notebook = tmp_path / f"{NAME}.ipynb"

    def process() -> dict[str, Any]:
        shown: dict[str, Any] = promotions.show(TENANT, NAME).get("process") or {}
        return shown

    def registered(adapter_pid: int) -> bool:
        adapter = local.entities.get_by_well_known_name(f"promotion.{NAME}").attributes
        return (
            process().get("adapterPid") == adapter_pid
            and adapter.get("communicationState") == "Online"
            and adapter.get("configurationState") == "Configured"
        )

    phases: list[str] = []
    began = time.monotonic()

    def phase(what: str) -> None:
        phases.append(f"{what} {time.monotonic() - began:.1f}")

    def run_pipeline(expected_voltage: float) -> None:
        pipeline = local.entities.get_by_well_known_name(f"promotion.{NAME}.pipeline.scale")
        result = httpx.post(
            f"{platform['controller']}/tenants/{TENANT}/pipelines/{pipeline.rt_id}/execute",
            params={"wait": 20},
            json={"input": {}},
            headers=platform["headers"],
            timeout=30,
        ).json()
        assert result["status"] == "Completed", result
        # the custom node's output, read back through the Asset Repository
        assert platform["remote"].entities.get(METER_1)["voltage"] == expected_voltage

    # v1: the reading 115 scaled by 2 by the notebook's own node ScaleValue@1
    write_notebook(notebook, adapter_cells(factor=2))
    first = promotions.promote(
        TENANT, notebook, kind="adapter", author="ada", options=platform["options"]
    )
    v1 = first.report["process"]
    assert (v1["version"], v1["state"], v1["replaced"]) == (1, "running", None)
    assert v1["customNodes"] is True
    assert pid_alive(v1["supervisorPid"])
    assert pid_alive(v1["adapterPid"])
    phase("v1 promoted")
    wait_for(lambda: registered(v1["adapterPid"]), "v1 Online and Configured")
    phase("v1 registered")
    client = Directory.for_workbench(wb).get_client(f"adapter.{TENANT}.{NAME}")
    assert client is not None
    assert client.tenant_id == TENANT
    run_pipeline(230.0)

    # v2 replaces v1's process: same Adapter entity, a new process, v1's gone
    write_notebook(notebook, adapter_cells(factor=3))
    second = promotions.promote(
        TENANT, notebook, kind="adapter", author="ada", options=platform["options"]
    )
    v2 = second.report["process"]
    assert (v2["version"], v2["replaced"]) == (2, 1)
    assert second.report["adapter"] == first.report["adapter"]
    assert not pid_alive(v1["supervisorPid"])
    assert not pid_alive(v1["adapterPid"])
    phase("v2 promoted")
    wait_for(lambda: registered(v2["adapterPid"]), "v2 Online and Configured")
    phase("v2 registered")
    run_pipeline(345.0)

    # rollback: v1's process is the live one again (and v1's pipeline definition)
    rolled = promotions.rollback(TENANT, NAME, by="ada")
    back = rolled.report["process"]
    assert (back["version"], back["replaced"]) == (1, 2)
    assert not pid_alive(v2["supervisorPid"])
    assert not pid_alive(v2["adapterPid"])
    phase("rolled back")
    wait_for(lambda: registered(back["adapterPid"]), "v1 again Online and Configured")
    phase("v1 registered again")
    run_pipeline(230.0)

    # a crashing adapter: the supervisor starts it again, waiting longer each time
    crashed = back["adapterPid"]
    os.kill(crashed, signal.SIGKILL)
    again = wait_for(
        lambda: (p := process()).get("adapterPid") not in (None, crashed) and p, "a restart"
    )
    assert (again["restarts"], again["lastExit"], again["supervisorPid"]) == (
        1,
        -signal.SIGKILL,
        back["supervisorPid"],
    )
    assert again["lastExitAt"]
    os.kill(again["adapterPid"], signal.SIGKILL)
    third = wait_for(
        lambda: (p := process()).get("restarts") == 2 and p.get("backoffSeconds") and p,
        "the second restart's backoff",
    )
    assert third["backoffSeconds"] == 1.0  # 0.5 s after the first crash, doubled
    wait_for(
        lambda: (p := process()).get("state") == "running" and registered(p["adapterPid"]),
        "the restarted adapter registered",
    )
    run_pipeline(230.0)
    phase("restarted")

    # retire: the process stops, the adapter goes Offline
    live = process()
    promotions.retire(TENANT, NAME, by="ada")
    assert not pid_alive(live["supervisorPid"])
    assert not pid_alive(live["adapterPid"])
    assert promotions.show(TENANT, NAME).get("process") is None
    wait_for(
        lambda: (
            local.entities.get_by_well_known_name(f"promotion.{NAME}").attributes.get(
                "communicationState"
            )
            == "Offline"
        ),
        "Offline after retire",
    )
    phase("retired")
    print("pool end to end (s): " + ", ".join(phases))


def test_the_cli_promotes_an_adapter_without_a_process_and_says_how_to_start_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        wb.tenants.create(TENANT)
    notebook = write_notebook(tmp_path / f"{NAME}.ipynb", [f"%%pipeline --name answer\n{ANSWER}"])

    def invoke(*args: str) -> Any:
        done = CliRunner().invoke(cli, ["--data-dir", str(home), *args], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return json.loads(done.output)

    promoted = invoke(
        "promote", "--tenant", TENANT, str(notebook), "--kind", "adapter", "--no-start", "--json"
    )
    report = promoted["report"]
    assert (
        report["start"] == f"workbench adapter run --tenant {TENANT} --adapter {report['adapter']}"
    )
    assert "process" not in report
    assert promoted["details"]["process"] is None
    assert "process" not in invoke("promotions", "show", "--tenant", TENANT, NAME, "--json")
    with workbench.open(home) as wb:
        assert AdapterPool(wb, TENANT).current(NAME) is None


def test_a_version_whose_process_does_not_start_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []

    def start(pool: AdapterPool, name: str, version: int, *args: Any) -> int:
        if version == 2:
            raise BackendUnavailable(f"the process of adapter promotion {name}@2 did not start")
        started.append(version)
        return 2**22 + version  # no such process: nothing to stop later

    monkeypatch.setattr(AdapterPool, "_start", start)
    with workbench.open(tmp_path / "wb") as wb:
        tenant = wb.tenants.create(TENANT)
        promotions = Promotions(wb)
        notebook = write_notebook(
            tmp_path / f"{NAME}.ipynb", [f"%%pipeline --name answer\n{ANSWER}"]
        )
        options = {"no_auth": True, "controller_url": "http://127.0.0.1:9"}
        promotions.promote(TENANT, notebook, kind="adapter", author="ada", options=options)
        changed = ANSWER.replace("value: 42", "value: 43")
        write_notebook(
            notebook, [f"%%pipeline --name answer\n{changed}", f"%%pipeline --name new\n{changed}"]
        )
        with pytest.raises(BackendUnavailable, match=r"meter-adapter@2 did not start"):
            promotions.promote(TENANT, notebook, kind="adapter", author="ada", options=options)
        # v1's process started again, v1 deployed, v1's pipelines as they were
        assert started == [1, 1]
        assert (AdapterPool(wb, TENANT).current(NAME) or {}).get("version") == 1
        assert promotions.show(TENANT, NAME)["deployment"]["version"] == 1
        pipelines = {
            p.attributes["name"]: p.attributes
            for p in tenant.entities.find("System.Communication/Pipeline", first=None).items
        }
        assert "value: 42" in pipelines["answer"]["pipelineDefinition"]
        assert pipelines["new"]["enabled"] is False
