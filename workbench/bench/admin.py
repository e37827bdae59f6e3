"""``admin-sessions`` (BENCHMARKS.md): concurrent Admin Panel sessions on the Data page.

The Asset Repository runs as ``workbench serve asset-repository`` in a subprocess with a
development static token (no Identity in the measurement); the Admin Panel runs in another
subprocess with :attr:`AdminConfig.session_token` (no OAuth login; every session acts with the
static token for the demo tenant). The load is ``N`` Bokeh client sessions opened at once from
threads of this process (``bokeh.client.pull_session``, each with its own connection and loop):

- *page load*: from opening the session with ``?page=Data`` until its document holds the Data
  page's table with rows (the page built on the server: model, first page of entities);
- *interaction*: each of :data:`PAGE_TURNS` clicks on the table's "Next page" button (a
  ``ButtonClick`` event sent through the client document), until the table's
  ``ColumnDataSource`` update arrives (a service call, the next page of rows, the patch back).
  The demo tenant gets :data:`EXTRA_BUILDINGS` buildings, so the first type has the pages.

The server's CPU per session is reported, and this process's (the client sessions decode every
document and patch into Python Bokeh models, on the same cores as the server, so the
wall-clock figures include the measurement's own load).

The baseline, in the same run: a plain Panel hello-world app (a table of 25 rows and a "Next
page" button that shows the next 25) served by the same Panel server configuration, the same
sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.bench.common import BenchReport, percentiles
from workbench.bench.http import _cpu_seconds

__all__ = ["admin_sessions"]

TOKEN = "bench-admin-token-0123456789"
NEXT_LABEL = "Next page ▶"
#: page turns per session (issue 16: "paging ten times")
PAGE_TURNS = 10
#: buildings added to the demo tenant: more than ``PAGE_TURNS + 1`` pages of 25
EXTRA_BUILDINGS = 300
#: a session whose page or update has not arrived by then counts as failed
SESSION_TIMEOUT_S = 120.0


def _wait_healthy(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited during start-up (code {process.returncode})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the {what} at {url} did not answer /healthz within 120 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- servers


def _hello_app() -> Any:
    """The baseline: a plain Panel page with a table of 25 rows and a button to the next 25."""
    import pandas as pd
    import panel as pn

    def frame(page: int) -> pd.DataFrame:
        numbers = range(25 * page, 25 * page + 25)
        return pd.DataFrame({"name": [f"row-{i}" for i in numbers], "value": numbers})

    # Panel's widget constructors are untyped calls (as in workbench.admin, see pyproject.toml)
    table = pn.widgets.Tabulator(  # type: ignore[no-untyped-call]
        frame(0), disabled=True, show_index=False, height=300
    )
    button = pn.widgets.Button(label=NEXT_LABEL)  # type: ignore[no-untyped-call]
    shown = [0]

    def next_page(_event: Any) -> None:
        shown[0] += 1
        table.value = frame(shown[0])

    button.on_click(next_page)
    return pn.Column("# Hello, world", table, button)


def _serve_child(kind: str, spec: dict[str, Any]) -> None:  # pragma: no cover - a subprocess
    """Run one of the two servers until terminated (``python -m workbench.bench.admin``)."""
    import panel as pn

    from workbench.admin.api import ServiceEndpoint
    from workbench.services.admin.app import AdminConfig, _handlers, build_server

    port = int(spec["port"])
    if kind == "admin":
        config = AdminConfig(
            data_dir=Path(spec["data_dir"]),
            identity_url="http://127.0.0.1:9",  # never called: the token is a static one
            api_url=spec["api_url"],
            public_url=f"http://127.0.0.1:{port}",
            services=[ServiceEndpoint("asset-repository", spec["api_url"])],
            session_token=spec["token"],
            session_tenants=list(spec["tenants"]),
            num_procs=int(spec["num_procs"]),
        )
        server = build_server(config, port=port)
    else:  # the same Panel configuration as the Admin Panel's build_server
        from workbench.services.metrics import ServiceMetrics

        pn.config.resources = "server"
        pn.extension("tabulator", design="bootstrap")
        config = AdminConfig(Path(spec["data_dir"]), "", "", f"http://127.0.0.1:{port}")
        server = pn.serve(  # type: ignore[no-untyped-call]
            {"/": _hello_app},
            port=port,
            address="127.0.0.1",
            show=False,
            start=False,
            websocket_origin=[f"127.0.0.1:{port}"],
            extra_patterns=_handlers(config, ServiceMetrics("bench-hello")),
            **({"num_procs": int(spec["num_procs"])} if int(spec["num_procs"]) != 1 else {}),
        )
    server.start()
    server.io_loop.start()


def _start_server(kind: str, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "workbench.bench.admin", "--serve", kind, json.dumps(spec)]
    env = {**os.environ, "WORKBENCH_LOG_FORMAT": "json"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- sessions


def _table_source(document: Any) -> Any:
    """The ColumnDataSource of the page's table (a Tabulator), None before it is there."""
    for model in document.models:
        if type(model).__name__ == "DataTabulator":
            return model.source
    return None


def _rows(source: Any) -> int:
    return max((len(column) for column in source.data.values()), default=0) if source else 0


def _next_button(document: Any) -> Any:
    from bokeh.models.widgets import Button

    for model in document.models:
        if isinstance(model, Button) and model.label == NEXT_LABEL:
            return model
    return None


def _click(document: Any, button: Any) -> None:
    """A click on ``button``, sent to the server as the browser sends it (a ``bokeh_event``)."""
    from bokeh.events import ButtonClick

    document.callbacks.send_event(ButtonClick(button))


def _wait(connection: Any, predicate: Callable[[], bool], timeout: float) -> bool:
    """Run the session's loop (receiving the server's patches) until ``predicate`` holds."""
    if predicate():
        return True
    loop = connection.io_loop
    handle = loop.call_later(timeout, loop.stop)
    connection._loop_until(predicate)  # stops on the predicate, or on the timeout above
    loop.remove_timeout(handle)
    return predicate()


def _session(url: str, start: threading.Barrier, out: dict[str, Any]) -> None:
    from bokeh.client import pull_session

    start.wait()
    began = time.perf_counter()
    try:
        session = pull_session(url=url, arguments={"page": "Data"})
    except Exception as exc:  # counted as a failed session
        out["error"] = f"pull: {exc}"
        return
    try:
        connection = session._connection
        document = session.document
        if not _wait(connection, lambda: _rows(_table_source(document)) > 0, SESSION_TIMEOUT_S):
            out["error"] = "the table has no rows"
            return
        out["load"] = time.perf_counter() - began
        button, source = _next_button(document), _table_source(document)
        if button is None:
            out["error"] = f"no button {NEXT_LABEL!r}"
            return
        arrived = threading.Event()
        source.on_change("data", lambda _attr, _old, _new: arrived.set())
        turns: list[float] = []
        for turn in range(PAGE_TURNS):
            arrived.clear()
            began = time.perf_counter()
            _click(document, button)
            if not _wait(connection, arrived.is_set, SESSION_TIMEOUT_S):
                out["error"] = f"no table update after page turn {turn + 1}"
                return
            turns.append(time.perf_counter() - began)
        out["interaction"] = turns
    except Exception as exc:  # counted as a failed session, with what went wrong
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        session.close()


def _sessions(url: str, count: int) -> tuple[list[float], list[float], list[str]]:
    """``count`` sessions opened at once: page loads (s), interactions (s), errors."""
    import importlib
    import pkgutil

    import panel.models

    for module in pkgutil.iter_modules(panel.models.__path__):  # the client knows every model
        importlib.import_module(f"panel.models.{module.name}")
    start = threading.Barrier(count)
    results: list[dict[str, Any]] = [{} for _ in range(count)]
    threads = [
        threading.Thread(target=_session, args=(url, start, results[i]), daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * SESSION_TIMEOUT_S)
    loads = [r["load"] for r in results if "load" in r]
    interactions = [t for r in results for t in r.get("interaction", [])]
    errors = [r.get("error", "did not finish") for r in results if "interaction" not in r]
    return loads, interactions, errors


def _tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its child processes (the forked server processes)."""
    own = _cpu_seconds(pid)
    if own is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    except OSError:
        children = []
    return own + sum(_cpu_seconds(int(child)) or 0.0 for child in children)


@dataclass
class _Run:
    """What one server's sessions measured (seconds)."""

    loads: list[float]
    interactions: list[float]
    errors: list[str]
    #: one session on its own (after a first one warmed the server): load, interaction
    alone: tuple[float, float]
    #: the server's CPU seconds over the concurrent sessions (None off Linux)
    cpu: float | None
    #: this process's CPU seconds over them: the Bokeh client sessions decoding the documents
    #: and patches into Python models (on the same cores as the server)
    client_cpu: float


def _measure(kind: str, spec: dict[str, Any], count: int, num_procs: int) -> _Run:
    """Start the ``kind`` server, warm it with one session, time one alone, then ``count`` at
    once."""
    from workbench.testing.http import free_port

    port = free_port()
    process = _start_server(kind, {**spec, "port": port, "num_procs": num_procs})
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_healthy(url.rstrip("/"), process, f"{kind} Panel server")
        for _ in range(2):  # the first session imports and caches, the second is timed alone
            load, interaction, errors = _sessions(url, 1)
            if errors:
                raise RuntimeError(f"the {kind} page did not load: {errors[0]}")
        cpu_before, client_before = _tree_cpu_seconds(process.pid), _own_cpu_seconds()
        loads, interactions, errors = _sessions(url, count)
        cpu_after, client_after = _tree_cpu_seconds(process.pid), _own_cpu_seconds()
    finally:
        _stop(process)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    alone = (load[0], percentiles(interaction)["p50_ms"] / 1000)
    return _Run(loads, interactions, errors, alone, cpu, client_after - client_before)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def admin_sessions(quick: bool = False, backend: str | None = None) -> BenchReport:
    """``N`` concurrent Admin Panel sessions: Data page load and ten page turns, p50/p95
    (both servers run the Admin Panel's ``admin_num_procs`` setting's processes,
    ``WORKBENCH_ADMIN_NUM_PROCS``, default 1)."""
    import workbench
    from workbench.demo import DEMO_TENANT, build_demo_tenant
    from workbench.settings import Settings
    from workbench.testing.http import free_port

    if backend is not None:
        raise ValueError(
            f"admin-sessions runs on the embedded store only, not backend={backend!r}: "
            "leave out --backend"
        )
    count = 5 if quick else 50
    num_procs = Settings().admin_num_procs
    report = BenchReport(
        "admin-sessions",
        quick,
        "sqlite (embedded)",
        {
            "sessions": count,
            "page": "Data",
            "tenant": DEMO_TENANT,
            "rows per page": 25,
            "page turns per session": PAGE_TURNS,
            "server processes": num_procs,
        },
    )
    home = Path(tempfile.mkdtemp(prefix="wb-bench-admin-"))
    try:
        with workbench.open(home) as wb:
            build_demo_tenant(wb, with_streams=False)
            _add_buildings(wb.tenant(DEMO_TENANT), EXTRA_BUILDINGS)
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "WORKBENCH_API_TOKEN": TOKEN,
            "WORKBENCH_DEV_STATIC_TOKEN": "true",
            "WORKBENCH_LOG_FORMAT": "json",
        }
        command = [sys.executable, "-m", "workbench", "serve", "asset-repository"]
        command += ["--port", str(port), "--data-dir", str(home)]
        assets = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_healthy(api_url, assets, "Asset Repository")
            spec: dict[str, Any] = {"data_dir": str(home), "api_url": api_url, "token": TOKEN}
            spec["tenants"] = [DEMO_TENANT]
            admin = _measure("admin", spec, count, num_procs)
            hello = _measure("hello", {"data_dir": str(home)}, count, num_procs)
        finally:
            _stop(assets)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load, interaction = percentiles(admin.loads), percentiles(admin.interactions)
    base_load, base_interaction = percentiles(hello.loads), percentiles(hello.interactions)
    report.add("page load p50", load["p50_ms"], "ms")
    report.add("page load p95", load["p95_ms"], "ms", "< 1000", load["p95_ms"] < 1000)
    report.add("interaction p50", interaction["p50_ms"], "ms")
    report.add(
        "interaction p95", interaction["p95_ms"], "ms", "< 1000", interaction["p95_ms"] < 1000
    )
    report.add("hello-world page load p50", base_load["p50_ms"], "ms")
    report.add("hello-world page load p95", base_load["p95_ms"], "ms")
    report.add("hello-world interaction p50", base_interaction["p50_ms"], "ms")
    report.add("hello-world interaction p95", base_interaction["p95_ms"], "ms")
    report.add("page load, 1 session alone", admin.alone[0] * 1000, "ms")
    report.add("interaction, 1 session alone (p50)", admin.alone[1] * 1000, "ms")
    report.add("hello-world page load, 1 session alone", hello.alone[0] * 1000, "ms")
    report.add("page load / hello-world (p95)", _ratio(load, base_load), "x")
    report.add("interaction / hello-world (p95)", _ratio(interaction, base_interaction), "x")
    if admin.cpu is not None and hello.cpu is not None:
        report.add("server CPU per session", admin.cpu * 1000 / count, "ms")
        report.add("hello-world server CPU per session", hello.cpu * 1000 / count, "ms")
    report.add("benchmark client CPU per session", admin.client_cpu * 1000 / count, "ms")
    report.add(
        "hello-world benchmark client CPU per session", hello.client_cpu * 1000 / count, "ms"
    )
    report.add("load average (1 min) at the end", os.getloadavg()[0], "")
    failed = len(admin.errors) + len(hello.errors)
    report.add("failed sessions", failed, "", "0", failed == 0)
    report.baseline = {
        "hello_world_page_load": base_load,
        "hello_world_interaction": base_interaction,
        "errors": sorted(set(admin.errors + hello.errors)),
    }
    return report


def _add_buildings(tenant: Any, count: int) -> None:
    """``count`` buildings of the demo site: pages for the sessions to turn."""
    from workbench.runtime.entity import AssociationInput, EntityInput

    site = tenant.entities.get_by_well_known_name("site-linz")
    link = [AssociationInput("System/ParentChild", site.rt_id)]
    tenant.entities.apply(
        creates=[
            EntityInput(
                "Demo.Energy/Building",
                {"name": f"Bench hall {n:03d}", "floorCount": n % 5},
                associations=link,
            )
            for n in range(count)
        ],
        return_entities=False,
    )


def _ratio(measured: dict[str, float], baseline: dict[str, float]) -> float:
    return measured["p95_ms"] / baseline["p95_ms"] if baseline["p95_ms"] else 0.0


def main(argv: list[str] | None = None) -> Any:  # pragma: no cover - manual runs, subprocesses
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--serve"]:
        _serve_child(args[1], json.loads(args[2]))
        return None
    result = admin_sessions(quick="--quick" in args)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
