"""``hub-spawn`` (BENCHMARKS.md): log in through Identity, spawn a tenant server, kernel ready.

The platform runs as in the hub tests (:class:`~workbench.hub.stack.HubStack`: Identity and the
Asset Repository in this process, JupyterHub with the real configurable-http-proxy as a child).
One sample is a fresh browser session: the OAuth login (scripted form flow), the spawn form for
the tenant, waiting for the server, starting the tenant kernel through the server's REST API and
waiting for the reply of a cell that uses ``wb``; the server is stopped between samples.

Baseline, in the same run: a plain single-user server (``jupyter server``, same extensions off,
no hub, no login) started and brought to the same kernel-ready point with the default kernel.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.bench.common import BenchReport, percentiles

__all__ = ["hub_spawn"]

TENANT = "bench-hub"
PASSWORD = "bench-hub-password-123"
TARGET_P95_S = 6.0


def _prepare(workbench: Any, directory: Any) -> None:
    from workbench.demo import build_demo_tenant

    build_demo_tenant(workbench, TENANT, with_streams=False)
    directory.ensure_builtin_groups(TENANT)
    directory.create_user(TENANT, "ada", password=PASSWORD, groups=["TenantOwners"])


PHASES = ("login", "spawn", "kernel start", "first reply")


def _hub_sample(hub_url: str) -> tuple[float, dict[str, float]]:
    """One fresh session; the total and the time of each of :data:`PHASES` (seconds)."""
    from workbench.hub.session import HubError, HubSession

    phases: dict[str, float] = {}
    started = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name], mark = now - mark, now

    with HubSession(hub_url) as session:
        session.login(TENANT, "ada", PASSWORD)
        lap("login")
        session.spawn(TENANT)
        lap("spawn")
        kernel = session.start_kernel()
        lap("kernel start")
        result = session.execute(kernel, "print(wb.entities.count('Demo.Energy/Site'))")
        lap("first reply")
        elapsed = time.perf_counter() - started
        if result.status != "ok":
            raise HubError(f"the tenant kernel failed: {result.error}")
        session.stop()
    return elapsed, phases


def _plain_server_sample(work: Path) -> float:
    """A single-user server alone: start, first kernel, first reply."""
    import httpx

    from workbench.hub.session import execute_in_kernel
    from workbench.testing.http import free_port

    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--ServerApp.jpserver_extensions=panel.io.jupyter_server_extension=False",
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    ]
    if os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        headers = {"Authorization": f"token {token}"}
        while True:
            if process.poll() is not None:
                raise RuntimeError("the plain Jupyter server exited during start-up")
            try:
                if httpx.get(f"{url}/api/status", headers=headers, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        kernel = httpx.post(f"{url}/api/kernels", headers=headers, json={}, timeout=60).json()
        result = execute_in_kernel(url, kernel["id"], "print(1)", token)
        elapsed = time.perf_counter() - started
        if result.status != "ok":
            raise RuntimeError(f"the plain kernel failed: {result.error}")
        return elapsed
    finally:
        process.terminate()
        process.wait(timeout=30)


def hub_spawn(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Login to kernel ready: p50/p95 over several spawns, with a plain-server baseline."""
    from workbench.hub.stack import HubStack

    samples = 1 if quick else 6
    report = BenchReport(
        "hub-spawn",
        quick,
        backend or "sqlite (embedded)",
        {"spawns": samples, "tenant": TENANT, "spawner": "TenantSpawner (local process)"},
    )
    home = Path(tempfile.mkdtemp(prefix="wb-bench-hub-"))
    try:
        with HubStack(home / "wb", admin_password=PASSWORD, prepare=_prepare) as stack:
            runs = [_hub_sample(stack.hub_url) for _ in range(samples)]
        hub = [total for total, _ in runs]
        work = home / "plain"
        work.mkdir()
        plain = [_plain_server_sample(work) for _ in range(samples)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    stats, base = percentiles(hub), percentiles(plain)
    p95_s = stats["p95_ms"] / 1000
    report.add("login to kernel ready p50", stats["p50_ms"] / 1000, "s")
    report.add("login to kernel ready p95", p95_s, "s", f"< {TARGET_P95_S:g}", p95_s < TARGET_P95_S)
    report.add("plain server to kernel ready p50", base["p50_ms"] / 1000, "s")
    report.add("hub / plain server (p50)", stats["p50_ms"] / max(base["p50_ms"], 1e-9), "x")
    for phase in PHASES:
        report.add(f"  {phase} p50", percentiles([p[phase] for _, p in runs])["p50_ms"] / 1000, "s")
    report.baseline = {
        "plain_single_user_server": base,
        "samples_s": plain,
        "hub_samples": [{"total_s": total, **phases} for total, phases in runs],
    }
    return report
