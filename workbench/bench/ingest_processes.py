"""The real ingest path of ``pipeline-ingest`` (issue 14), every leg its own process.

Devices (an MQTT client of this process, one message per poll of ``meters`` meters, 4 values each)
publish to a mosquitto broker of the benchmark's own; an edge adapter PROCESS
(``workbench adapter run --edge``) runs ``FromMqtt@1`` → ``SaveStreamDataInArchive@1``, so
each poll goes into its outbox and from there to RabbitMQ's ``stream-points``; an Asset
Repository PROCESS (``workbench serve asset-repository``, ``WORKBENCH_BUS_URL`` the RabbitMQ)
consumes them with its stream-points consumer and writes DuckDB. This process counts what is
queryable through the Asset Repository's SQL endpoint.

The adapter runs the configuration kept in its edge state (what the controller last pushed;
written here, the controller's place on the data path is none) with the controller away.
Publishing keeps at most ``window`` polls ahead of what is queryable (closed loop: a sustained
rate, not a queue that grows for the whole run). Latency is from a poll's publish to the first
count of queryable rows that includes it (the count is polled every ``POLL_SECONDS``, so it is
at most that much high). At the end the store is counted: every (rtId, timeStamp) row once,
none missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.bench.common import percentiles, progress

__all__ = ["ProcessFigures", "ingest_through_processes", "meter_poll"]

METER = "Demo.Energy/EnergyMeter"
ADAPTER = "6570c00000000000000000a1"
PIPELINE_RT_ID = "6570c00000000000000000a2"
BROKER = {
    "rtId": "6570c00000000000000000a3",
    "ckTypeId": "System.Communication/MqttBroker",
    "rtWellKnownName": "benchBroker",
    "name": "bench broker",
    "host": "127.0.0.1",
}
PIPELINE = f"""
triggers:
  - type: FromMqtt@1
    broker: benchBroker
    topics: [{{topic: "plant/+/poll", qos: 1}}]
transformations:
  - type: SaveStreamDataInArchive@1
    path: $.payload.updates
    ckTypeId: {METER}
"""
START = datetime(2026, 3, 1, tzinfo=UTC)
WARM_UP = START - timedelta(days=1)
PACED = START + timedelta(days=1)
POLL_SECONDS = 0.05

#: what :func:`ingest_through_processes` measured
ProcessFigures = dict[str, float]


def meter_poll(rt_ids: list[str], start: datetime, second: int) -> list[dict[str, Any]]:
    """One poll of every meter's four values at ``start`` + ``second`` (the update infos)."""
    stamp = (start + timedelta(seconds=second)).isoformat()
    return [
        {
            "rtId": rt_id,
            "ckTypeId": METER,
            "timestamp": stamp,
            "attributes": {
                "voltage": 230.0 + (i + second) % 7,
                "current": 5.0 + i % 3,
                "activePower": 1150.0 + second % 11,
                "energyImported": float(second),
            },
        }
        for i, rt_id in enumerate(rt_ids)
    ]


def _poll(rt_ids: list[str], second: int, start: datetime) -> dict[str, Any]:
    return {"updates": meter_poll(rt_ids, start, second)}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """A child process with its log file; its CPU seconds and peak memory from /proc."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(command, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}): {tail}")

    def cpu_seconds(self) -> float:
        return _cpu_of(self.popen.pid)

    def peak_memory_mib(self) -> float:
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._out.close()


@contextmanager
def _processes() -> Iterator[list[_Process]]:
    started: list[_Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def _make_home(home: Path, tenant_id: str, meters: int) -> list[str]:
    """The data directory: tenant ``tenant_id`` with Demo.Energy and ``meters`` meters."""
    import workbench
    from workbench.demo import demo_data_dir

    with workbench.open(home) as wb:
        tenant = wb.tenants.create(tenant_id)
        tenant.ck.import_library(demo_data_dir() / "ConstructionKit")
        entities = tenant.entities
        site = entities.create("Demo.Energy/Site", {"Name": "Bench site"}).rt_id
        building = entities.create(
            "Demo.Energy/Building", {"Name": "Bench hall"}, associations=[("parent", site)]
        ).rt_id
        return [
            entities.create(
                METER,
                {"Name": f"Meter {i}", "SerialNumber": f"P-{i:05d}", "State": "Active"},
                associations=[("parent", building)],
            ).rt_id
            for i in range(meters)
        ]


def ingest_through_processes(
    amqp_url: str, tenant_id: str, *, meters: int, messages: int, window: int, paced: int
) -> ProcessFigures:
    """Run the path of the module docstring; its figures."""
    import aiomqtt
    import httpx

    from workbench.bench.mosquitto import mosquitto
    from workbench.communication.edge import EdgeState
    from workbench.testing.http import free_port

    directory = Path(tempfile.mkdtemp(prefix="wb-bench-ingest-"))
    home = directory / "wb"
    rt_ids = _make_home(home, tenant_id, meters)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKBENCH_API_TOKEN", "WORKBENCH_API_URL", "WORKBENCH_HOME")
    }
    env["WORKBENCH_BUS_URL"] = amqp_url
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    figures: ProcessFigures = {}
    with ExitStack() as stack:
        port, broker = stack.enter_context(mosquitto(directory))
        children = stack.enter_context(_processes())
        children.append(
            _Process(
                "the Asset Repository",
                [
                    *(sys.executable, "-m", "workbench", "serve", "asset-repository"),
                    *("--port", str(api_port), "--data-dir", str(home), "--no-auth"),
                ],
                env,
                directory / "asset-repository.log",
            )
        )
        state = EdgeState(directory / "edge")
        state.save_configuration(
            {
                "type": "configuration",
                "version": 1,
                "adapterConfiguration": None,
                "pipelines": [
                    {
                        "rtId": PIPELINE_RT_ID,
                        "name": "mqtt-ingest",
                        "definition": PIPELINE,
                        "configurations": [{**BROKER, "port": port}],
                    }
                ],
            }
        )
        children.append(
            _Process(
                "the edge adapter",
                [
                    *(sys.executable, "-m", "workbench", "adapter", "run"),
                    *("--tenant", tenant_id, "--adapter", ADAPTER, "--edge"),
                    *("--edge-dir", str(state.directory), "--data-dir", str(home)),
                    *("--controller", f"http://127.0.0.1:{_closed_port()}"),
                ],
                env,
                directory / "adapter.log",
            )
        )
        repository, adapter = children
        http = stack.enter_context(httpx.Client(base_url=api, timeout=30))

        def sql(statement: str) -> list[dict[str, Any]]:
            response = http.post(
                f"/tenants/{tenant_id}/streams/sql", json={"sql": statement, "format": "json"}
            )
            if response.status_code != 200:
                raise RuntimeError(f"stream SQL failed: {response.status_code} {response.text}")
            rows: list[dict[str, Any]] = response.json()
            return rows

        def count(since: datetime) -> int:
            try:
                rows = sql(
                    f'SELECT count(*) AS n FROM "{METER}" WHERE "timeStamp" >= '
                    f"TIMESTAMPTZ '{since.isoformat()}'"
                )
            except (httpx.HTTPError, RuntimeError):
                return 0  # no stream data yet (no view), or the service is starting
            return int(rows[0]["n"])

        async def run() -> None:
            async with aiomqtt.Client("127.0.0.1", port, identifier="bench-devices") as client:
                # warm-up: until a poll went all the way (adapter subscribed, consumer running)
                async with asyncio.timeout(300):
                    second = 0
                    while await asyncio.to_thread(count, WARM_UP) == 0:
                        for process in children:
                            process.check()
                        payload = json.dumps(_poll(rt_ids, second, WARM_UP))
                        await client.publish("plant/warm-up/poll", payload, qos=1)
                        second += 1
                        await asyncio.sleep(0.5)
                cpu_before = {p.name: p.cpu_seconds() for p in children}
                broker_cpu = _cpu_of(broker.pid)
                elapsed, latencies = await phase(client, START, messages, None)
                figures["elapsed"] = elapsed
                figures["cpuAdapter"] = adapter.cpu_seconds() - cpu_before[adapter.name]
                figures["cpuRepository"] = repository.cpu_seconds() - cpu_before[repository.name]
                figures["cpuBroker"] = _cpu_of(broker.pid) - broker_cpu
                for name, value in percentiles(latencies).items():
                    figures[f"latency_{name}"] = value
                # then at half that rate: the latency of a plant the path keeps up with
                interval = 2 * elapsed / messages
                figures["pacedPointsPerSecond"] = meters * 4 / interval
                _, latencies = await phase(client, PACED, paced, interval)
                for name, value in percentiles(latencies).items():
                    figures[f"pacedLatency_{name}"] = value

        async def phase(
            client: Any, start: datetime, polls: int, interval: float | None
        ) -> tuple[float, list[float]]:
            """Publish ``polls`` polls (each ``interval`` apart, or as fast as ``window``
            lets); the seconds until all are queryable, and each one's latency."""
            payloads = [json.dumps(_poll(rt_ids, s, start)) for s in range(polls)]
            sent: list[float] = [0.0] * polls
            landed: list[float] = [0.0] * polls
            queryable = 0  # polls whose rows are all queryable

            async def watch() -> None:
                nonlocal queryable
                while queryable < polls:
                    rows = await asyncio.to_thread(count, start)
                    now = time.perf_counter()
                    while queryable < min(polls, rows // meters):
                        landed[queryable] = now
                        queryable += 1
                    if queryable < polls:
                        adapter.check()
                        repository.check()
                        await asyncio.sleep(POLL_SECONDS)

            began = time.perf_counter()
            watcher = asyncio.create_task(watch())
            label = "pipeline-ingest " + ("(paced)" if interval else "(processes)")
            with progress(label, polls) as advance:
                for index, payload in enumerate(payloads):
                    if interval is not None:
                        await asyncio.sleep(
                            max(0.0, began + index * interval - time.perf_counter())
                        )
                    while index - queryable >= window and not watcher.done():
                        await asyncio.sleep(POLL_SECONDS / 2)
                    sent[index] = time.perf_counter()
                    await client.publish(f"plant/line-{index % 4}/poll", payload, qos=1)
                    advance(1)
                async with asyncio.timeout(600):
                    await watcher
            elapsed = time.perf_counter() - began
            return elapsed, [landed[i] - sent[i] for i in range(polls)]

        asyncio.run(run())
        figures["adapterPeakMiB"] = adapter.peak_memory_mib()
        figures["repositoryPeakMiB"] = repository.peak_memory_mib()
        rows = sql(
            f'SELECT count(*) AS n, count(DISTINCT ("rtId", "timeStamp")) AS d, '
            f'sum("energyImported") AS s FROM "{METER}" WHERE "timeStamp" >= '
            f"TIMESTAMPTZ '{START.isoformat()}'"
        )[0]
        figures["rows"] = float(rows["n"])
        figures["distinctRows"] = float(rows["d"])
        figures["valueSum"] = float(rows["s"] or 0.0)
        figures["expectedRows"] = float((messages + paced) * meters)
        figures["expectedValueSum"] = float(meters * (sum(range(messages)) + sum(range(paced))))
    shutil.rmtree(directory, ignore_errors=True)
    return figures


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
