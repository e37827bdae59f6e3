"""End to end, with real processes: the Asset Repository, the Communication Controller and two
``workbench adapter run`` processes on one data directory (embedded bus, or RabbitMQ). The
example data flow is deployed; a manual execute and a cron trigger run it; the meter's readings
appear in GraphQL; stopping an adapter makes it Offline; changing a pipeline re-configures the
running adapter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from tests.communication.conftest import (
    EDGE_ADAPTER,
    MESH_ADAPTER,
    READ_METER,
    UPDATE_METER,
    dataflow_file,
)
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1
from workbench.client.remote import RemoteTenant
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.runtime.files import import_runtime_file
from workbench.testing.http import free_port
from workbench.testing.servers import require_server_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TRIGGER = "6570c0000000000000000013"
METER_QUERY = (
    '{ runtime { rtDemoEnergyEnergyMeter(rtId: "' + METER_1 + '") { items { voltage current } } } }'
)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKBENCH_API_TOKEN", "WORKBENCH_BUS_URL", "WORKBENCH_API_URL")
    }
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def _meter(tenant: RemoteTenant) -> dict[str, Any]:
    data = tenant.graphql(METER_QUERY, raw=True)
    return dict(data["runtime"]["rtDemoEnergyEnergyMeter"]["items"][0])


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, KeyError, IndexError, TypeError):
            last = None
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _service(
    stack: ExitStack, name: str, home: Path, env: dict[str, str], tmp: Path, *extra: str
) -> str:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "workbench",
        "serve",
        name,
        "--port",
        str(port),
        "--data-dir",
        str(home),
        "--no-auth",
        *extra,
    ]
    process = stack.enter_context(_process(command, env, tmp / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (tmp / f"{name}.log").read_text()[-3000:]
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200

    wait_for(healthy, f"{name} to start", 120)
    return url


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        tenant = wb.tenants.create("energy")
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
        import_runtime_file(tenant.entities, tenant.model, dataflow_file())
    return home


@pytest.fixture(params=["embedded", "rabbitmq"])
def bus_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "embedded":
        yield {}
        return
    url = require_server_url("WORKBENCH_TEST_AMQP_URL", "RabbitMQ")
    management = require_server_url("WORKBENCH_TEST_RABBITMQ_MANAGEMENT_URL", "RabbitMQ API")
    admin = RabbitMqAdmin(management)
    admin.ensure_tenant("energy")
    try:
        yield {"WORKBENCH_BUS_URL": url}
    finally:
        admin.delete_tenant("energy")
        admin.close()


def test_dataflow_runs_across_adapter_processes(
    home: Path, bus_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(bus_env)
    with ExitStack() as stack:
        api = _service(stack, "asset-repository", home, env, tmp_path)
        controller = _service(
            stack,
            "communication-controller",
            home,
            env,
            tmp_path,
            "--heartbeat-seconds",
            "0.5",
            "--offline-after-seconds",
            "2",
        )
        adapters = {}
        for rt_id in (EDGE_ADAPTER, MESH_ADAPTER):
            command = [
                sys.executable,
                "-m",
                "workbench",
                "adapter",
                "run",
                "--tenant",
                "energy",
                "--adapter",
                rt_id,
                "--controller",
                controller,
                "--api-url",
                api,
                "--data-dir",
                str(home),
            ]
            adapters[rt_id] = stack.enter_context(
                _process(command, env, tmp_path / f"adapter-{rt_id}.log")
            )

        def states() -> dict[str, tuple[str, str]]:
            rows = httpx.get(f"{controller}/tenants/energy/adapters", timeout=5).json()
            return {
                r["rtId"]: (r.get("communicationState"), r.get("configurationState")) for r in rows
            }

        wait_for(
            lambda: (
                states().get(EDGE_ADAPTER) == ("Online", "Configured")
                and states().get(MESH_ADAPTER) == ("Online", "Configured")
            ),
            "both adapters Online and Configured",
            timeout=120,  # two interpreters starting on a loaded 2-core machine
        )
        tenant = stack.enter_context(RemoteTenant(api, "energy"))
        assert tenant.entities.get(READ_METER)["deploymentState"] == "Deployed"

        # a manual execute runs pipeline 1 on the edge adapter, pipeline 2 on the mesh adapter
        # writes the meter: the reading is queryable in GraphQL
        tenant.entities.update(METER_1, {"voltage": 0.0})
        began = time.perf_counter()
        result = httpx.post(
            f"{controller}/tenants/energy/pipelines/{READ_METER}/execute",
            params={"wait": 20},
            json={"input": {}},
            timeout=30,
        ).json()
        assert result["status"] == "Completed", result
        meter = wait_for(
            lambda: (m := _meter(tenant)) and 225 <= (m.get("voltage") or 0) <= 235 and m,
            "the meter reading in GraphQL",
        )
        latency_ms = (time.perf_counter() - began) * 1000
        assert 0 <= meter["current"] <= 40
        print(f"execute-to-queryable: {latency_ms:.0f} ms")

        executions = httpx.get(
            f"{controller}/tenants/energy/pipelines/{UPDATE_METER}/executions", timeout=5
        ).json()
        assert executions
        assert executions[0]["status"] == "Completed"
        assert executions[0]["triggerType"] == "Event"

        # the cron trigger: every second (6 fields, seconds first) fires pipeline 1
        tenant.entities.update(TRIGGER, {"cronExpression": "* * * * * ?"})
        wait_for(
            lambda: any(
                e["triggerType"] == "Scheduled" and e["status"] == "Completed"
                for e in httpx.get(
                    f"{controller}/tenants/energy/pipelines/{READ_METER}/executions",
                    params={"first": 50},
                    timeout=5,
                ).json()
            ),
            "a scheduled execution",
        )
        tenant.entities.update(TRIGGER, {"enabled": False})

        # changing pipeline 2 re-configures the running mesh adapter (same process)
        pid = adapters[MESH_ADAPTER].pid
        definition = tenant.entities.get(UPDATE_METER)["pipelineDefinition"]
        changed = definition.replace(
            "  - type: ApplyChanges@2",
            "  - type: SetPrimitiveValue@1\n    targetPath: $.changed\n    value: yes\n"
            "  - type: ApplyChanges@2",
        )
        assert changed != definition
        before = httpx.get(f"{controller}/tenants/energy/adapters/{MESH_ADAPTER}", timeout=5).json()
        tenant.entities.update(UPDATE_METER, {"pipelineDefinition": changed})
        wait_for(
            lambda: (
                httpx.get(f"{controller}/tenants/energy/adapters/{MESH_ADAPTER}", timeout=5).json()[
                    "configuration"
                ]["pipelines"][0]["definition"]
                == changed
                and states()[MESH_ADAPTER] == ("Online", "Configured")
            ),
            "the new configuration acknowledged",
        )
        assert adapters[MESH_ADAPTER].pid == pid
        assert adapters[MESH_ADAPTER].poll() is None
        assert before["configuration"]["pipelines"][0]["definition"] == definition

        # a bad definition: the adapter reports it, the pipeline is in Error
        tenant.entities.update(UPDATE_METER, {"pipelineDefinition": "triggers: []\nsteps: []\n"})
        wait_for(lambda: states()[MESH_ADAPTER][1] == "Error", "ConfigurationState Error")
        adapter = tenant.entities.get(MESH_ADAPTER)
        assert "unknown root key 'steps'" in adapter["lastConfigurationError"]
        assert tenant.entities.get(UPDATE_METER)["deploymentState"] == "Error"

        # stopping the edge adapter: Offline within the heartbeat deadline
        adapters[EDGE_ADAPTER].kill()
        stopped = time.monotonic()
        wait_for(lambda: states()[EDGE_ADAPTER][0] == "Offline", "Offline", timeout=10)
        assert time.monotonic() - stopped < 2 + 2.0

        metrics = httpx.get(f"{controller}/metrics", timeout=5).text
        assert "workbench_adapters_online 1.0" in metrics
        assert 'workbench_pipeline_runs_total{status="Completed"}' in metrics
