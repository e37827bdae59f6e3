"""``workbench serve asset-repository --workers 2`` over real HTTP: both processes serve the
port, each sees what the other wrote, writes and REST go to the primary, and every worker checks
the token."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

import workbench
from workbench.bench.graphql import GRAPHQL_BENCH_LIBRARY
from workbench.ck.loader import load_library_from_text
from workbench.services.asset_repository.workers import WORKER_HEADER, needs_primary, primary_socket
from workbench.testing.http import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "workers-test-token-0123456789"
TENANT = "multi"
CREATE = 'mutation { runtime { benchMeterSites { create(entities: [{name: "%s"}]) { rtId } } } }'
LIST = "{ runtime { rtBenchMeterSite(first: 100) { items { rtId name } } } }"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("workers") / "wb"
    with workbench.open(home) as wb:
        tenant = wb.tenants.create(TENANT)
        tenant.ck.import_library(load_library_from_text(GRAPHQL_BENCH_LIBRARY, "bench.yaml"))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKBENCH_API_TOKEN": TOKEN,
        "WORKBENCH_DEV_STATIC_TOKEN": "true",
    }
    command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
    command += ["--port", str(port), "--data-dir", str(home), "--workers", "2"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_both(url, process)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not primary_socket(home, port).exists(), "the primary's socket is removed on exit"


def _wait_for_both(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until worker 0 and 1 both answer /readyz (each connection lands on one of them)."""
    seen: set[str] = set()
    deadline = time.monotonic() + 240  # start-up on a loaded 2-core machine
    while seen != {"0", "1"}:
        assert process.poll() is None, "the service exited during start-up"
        assert time.monotonic() < deadline, f"only workers {seen} came up"
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            seen.add(response.headers[WORKER_HEADER])


def _post(url: str, query: str, token: str = TOKEN) -> httpx.Response:
    # a new connection each time: the kernel picks the worker per connection
    return httpx.post(
        f"{url}/tenants/{TENANT}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _by_worker(url: str, query: str, token: str = TOKEN) -> dict[str, httpx.Response]:
    """One response of each worker to ``query``."""
    answers: dict[str, httpx.Response] = {}
    for _ in range(400):
        response = _post(url, query, token)
        answers.setdefault(response.headers[WORKER_HEADER], response)
        if len(answers) == 2:
            return answers
    raise AssertionError(f"only workers {sorted(answers)} answered 400 connections")


def test_both_workers_serve_and_see_each_others_writes(service: tuple[str, Path]) -> None:
    url, _home = service
    for name in ("first", "second"):
        created = _post(url, CREATE % name)
        assert created.status_code == 200, created.text
        assert "errors" not in created.json()
        assert created.headers[WORKER_HEADER] == "0"  # writes run in the primary
        answers = _by_worker(url, LIST)
        for worker, response in answers.items():
            names = {
                item["name"]
                for item in response.json()["data"]["runtime"]["rtBenchMeterSite"]["items"]
            }
            assert name in names, f"worker {worker} does not see {name!r}"


def test_rest_requests_go_to_the_primary(service: tuple[str, Path]) -> None:
    url, _home = service
    for _ in range(20):
        response = httpx.get(
            f"{url}/tenants/{TENANT}/ck/stamp",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.headers[WORKER_HEADER] == "0"


def test_every_worker_checks_the_token(service: tuple[str, Path]) -> None:
    url, _home = service
    for query in (LIST, CREATE % "intruder"):  # served in place, and forwarded
        for worker, response in _by_worker(url, query, token="not-the-token").items():
            assert response.status_code == 401, (worker, response.text)
    names = _post(url, LIST).json()["data"]["runtime"]["rtBenchMeterSite"]["items"]
    assert "intruder" not in {item["name"] for item in names}


SUBSCRIBE = (
    "subscription { benchMeterSiteEvents(updateTypes: [INSERT]) "
    "{ updateType entity { ... on BenchMeterSite { name } } } }"
)


async def _events_in_worker_1(url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """On a WebSocket held by worker 1: subscribe to site inserts, then create sites with
    mutations sent over the same socket (run by the primary) until an event arrives."""
    for _ in range(400):
        ws = await websockets.connect(
            url.replace("http://", "ws://") + f"/tenants/{TENANT}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        )
        if ws.response is not None and ws.response.headers.get(WORKER_HEADER) == "1":
            break
        await ws.close()
    else:
        raise AssertionError("no WebSocket reached worker 1")
    async with ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {TOKEN}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        subscribe = {"id": "events", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
        await ws.send(json.dumps(subscribe))
        created: list[str] = []
        events: list[dict[str, Any]] = []
        for attempt in range(20):  # until the subscription is registered with the bus
            name = f"over-ws-{attempt}"
            mutation = {"query": CREATE % name}
            await ws.send(json.dumps({"id": name, "type": "subscribe", "payload": mutation}))
            deadline = asyncio.get_running_loop().time() + 3
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), left))
                except TimeoutError:
                    break
                if message["id"] == "events":
                    events.append(message["payload"]["data"]["benchMeterSiteEvents"])
                elif message["type"] == "next":
                    assert "errors" not in message["payload"], message
                    created.append(message["id"])
                if name in created and events:
                    return created, events
        raise AssertionError(f"no event reached worker 1 for {created}")


def test_mutations_over_a_workers_websocket_reach_its_subscriptions(
    service: tuple[str, Path],
) -> None:
    url, _home = service
    created, events = asyncio.run(_events_in_worker_1(url))
    assert created, "the mutations sent over worker 1's socket ran (in the primary)"
    assert {event["updateType"] for event in events} == {"INSERT"}
    assert {event["entity"]["name"] for event in events} <= set(created)


@pytest.mark.parametrize(
    ("query", "primary"),
    [
        (LIST, False),
        ("{ constructionKit { __typename } }", False),
        ("mutation { runtime { __typename } }", True),
        ("{ streamData { __typename } }", True),
        ('{ runtime { runQuery(rtId: "q") { __typename } } }', True),
        ("{ somethingAnExtensionAdds }", True),
        ("subscription { onChange }", False),  # WebSocket only: the worker holding it
        ("{ not a document", False),
    ],
)
def test_needs_primary(query: str, primary: bool) -> None:
    assert needs_primary(query, None) is primary


def test_workers_serve_https_and_forward_to_the_primary(tmp_path: Path) -> None:
    """``--workers 2 --cert --key``: both workers answer over HTTPS; writes and REST reaching
    worker 1 go on to the primary over its (plain, private) Unix socket and succeed."""
    from workbench.testing.smtp import make_test_certificates

    ca, cert, key = make_test_certificates(tmp_path)
    trust = ssl.create_default_context(cafile=str(ca))
    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        tenant = wb.tenants.create(TENANT)
        tenant.ck.import_library(load_library_from_text(GRAPHQL_BENCH_LIBRARY, "bench.yaml"))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKBENCH_API_TOKEN": TOKEN,
        "WORKBENCH_DEV_STATIC_TOKEN": "true",
    }
    command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
    command += ["--port", str(port), "--data-dir", str(home), "--workers", "2"]
    command += ["--cert", str(cert), "--key", str(key)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"https://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 240
        while seen != {"0", "1"}:
            assert process.poll() is None, "the service exited during start-up"
            assert time.monotonic() < deadline, f"only workers {seen} came up over HTTPS"
            try:
                response = httpx.get(f"{url}/readyz", timeout=5, verify=trust)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if response.status_code == 200:
                seen.add(response.headers[WORKER_HEADER])
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the port
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        for n in range(12):  # a new connection each: about half reach worker 1
            created = httpx.post(
                f"{url}/tenants/{TENANT}/graphql",
                json={"query": CREATE % f"tls-{n}"},
                headers=headers,
                timeout=30,
                verify=trust,
            )
            assert created.status_code == 200, created.text
            assert "errors" not in created.json(), created.text
            stamp = httpx.get(
                f"{url}/tenants/{TENANT}/ck/stamp", headers=headers, timeout=30, verify=trust
            )
            assert stamp.status_code == 200, stamp.text
        answers: dict[str, set[str]] = {}
        for _ in range(400):
            response = httpx.post(
                f"{url}/tenants/{TENANT}/graphql",
                json={"query": LIST},
                headers=headers,
                timeout=30,
                verify=trust,
            )
            items = response.json()["data"]["runtime"]["rtBenchMeterSite"]["items"]
            answers.setdefault(response.headers[WORKER_HEADER], {i["name"] for i in items})
            if len(answers) == 2:
                break
        assert sorted(answers) == ["0", "1"]
        for worker, names in answers.items():
            assert {f"tls-{n}" for n in range(12)} <= names, f"worker {worker} misses writes"
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not primary_socket(home, port).exists(), "the primary's socket is removed on exit"
