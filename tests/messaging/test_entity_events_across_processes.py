"""Entity events cross processes: a GraphQL subscription served by a real Asset Repository
process sees the changes a CLI process makes on the same data directory (embedded bus log, or
RabbitMQ), and the mutations of a second Asset Repository worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME, METER_1
from workbench.messaging.rabbitmq_admin import RabbitMqAdmin
from workbench.runtime.files import import_runtime_file
from workbench.testing.http import free_port
from workbench.testing.servers import require_server_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBE = (
    "subscription { demoEnergyEnergyMeterEvents(updateTypes: [UPDATE]) "
    "{ updateType rtId entity { ... on DemoEnergyEnergyMeter { voltage } } } }"
)


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKBENCH_API_TOKEN", "WORKBENCH_BUS_URL", "WORKBENCH_API_URL")
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        tenant = wb.tenants.create("energy")
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
    return home


@pytest.fixture(params=["embedded", "rabbitmq"])
def bus_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """What the processes get: nothing (the data directory's embedded log) or a RabbitMQ URL
    (tenant ``energy`` in its vhost ``wb-energy``)."""
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


@contextmanager
def _asset_repository(home: Path, env: dict[str, str]) -> Iterator[str]:
    """``workbench serve asset-repository`` in a process of its own; its host:port."""
    port = free_port()
    command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
    command += ["--port", str(port), "--data-dir", str(home), "--no-auth"]
    process = subprocess.Popen(command, env={**_env(), **env}, stderr=subprocess.DEVNULL)
    url = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the Asset Repository exited"
            assert time.monotonic() < deadline, "the Asset Repository did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def server(home: Path, bus_env: dict[str, str]) -> Iterator[str]:
    with _asset_repository(home, bus_env) as url:
        yield url


async def _first_event(server: str, change: Callable[[float], Awaitable[None]]) -> dict[str, Any]:
    """Subscribe at ``server``, then ``change`` the meter's voltage until an event arrives (the
    server registers the subscription asynchronously); the event, checked against the writes."""
    url = f"ws://{server}/tenants/energy/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        written: list[float] = []
        for attempt in range(5):
            voltage = 300.0 + attempt
            await change(voltage)
            written.append(voltage)
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            except TimeoutError:
                continue
            assert message["type"] == "next", message
            event: dict[str, Any] = message["payload"]["data"]["demoEnergyEnergyMeterEvents"]
            assert event["updateType"] == "UPDATE"
            assert event["rtId"] == METER_1
            assert event["entity"]["voltage"] in written
            return event
    pytest.fail(f"no event for {len(written)} updates of the meter made by another process")


def _cli_sets_voltage(home: Path, voltage: float, tmp: Path, env: dict[str, str]) -> None:
    """`workbench rt import` in a process of its own, updating meter 1's voltage."""
    runtime = tmp / f"meter-{voltage}.yaml"
    runtime.write_text(
        "dependencies:\n  - Demo.Energy-[1.0,2.0)\nentities:\n"
        f"  - rtId: {METER_1}\n    ckTypeId: Demo.Energy/EnergyMeter\n"
        f"    attributes:\n      - {{id: Demo.Energy/Voltage, value: {voltage}}}\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "workbench", "rt", "import", "--tenant", "energy"]
    command += [str(runtime), "--data-dir", str(home)]
    done = subprocess.run(
        command, env={**_env(), **env}, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_subscription_sees_a_change_made_by_the_cli_in_another_process(
    server: str, home: Path, tmp_path: Path, bus_env: dict[str, str]
) -> None:
    async def cli(voltage: float) -> None:
        await asyncio.to_thread(_cli_sets_voltage, home, voltage, tmp_path, bus_env)

    asyncio.run(_first_event(server, cli))


def test_a_subscription_on_one_worker_sees_a_mutation_on_another(home: Path) -> None:
    with _asset_repository(home, {}) as first, _asset_repository(home, {}) as second:

        async def mutate_on_second(voltage: float) -> None:
            mutation = (
                "mutation { runtime { demoEnergyEnergyMeters { update(entities: "
                f'[{{rtId: "{METER_1}", item: {{voltage: {voltage}}}}}]) {{ rtId }} }} }} }}'
            )
            async with httpx.AsyncClient(base_url=f"http://{second}") as http:
                response = await http.post("/tenants/energy/graphql", json={"query": mutation})
                assert "errors" not in response.json(), response.json()

        asyncio.run(_first_event(first, mutate_on_second))
