"""The local adapter pool: the processes of promoted adapter notebooks on this machine.

Each deployed ``adapter`` promotion has one supervised process
(:mod:`workbench.promotion.adapter_supervisor` running ``workbench adapter run --tenant T
--adapter RTID ...``) that registers with the Communication Controller like any adapter and
loads the notebook's custom nodes (``$WORKBENCH_NODE_PLUGINS``). The supervisor runs in a session
of its own: it outlives the ``workbench promote`` that started it. Per promotion, in the tenant's
file area::

    promotions/<name>/pool/
        current.json        {"version": k, "supervisorPid", "at"}: the live process (os.replace)
        v<k>/nodes.py       the custom nodes of version k (its plug-in file)
        v<k>/supervisor.json  what the supervisor of version k does (state, pids, restarts)
        v<k>/adapter.log    the adapter's output

:meth:`AdapterPool.switch` stops the live version's process and starts ``k``'s (the adapter's
rtId stays; a few seconds of start-up in between), then moves ``current.json``; when ``k``'s
process does not come up, the earlier version's is started again and nothing moved.
:meth:`AdapterPool.stop` (retire) stops it. :func:`resume_pools` (the Bot Service at start-up,
``workbench promotions resume``) starts the process of every deployed adapter promotion whose
supervisor is gone (a reboot): one whose supervisor still runs is kept, never doubled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import BackendUnavailable, WorkbenchError
from workbench.promotion.custom_nodes import node_process_command, node_process_environment

__all__ = ["ADAPTER_ROLES", "AdapterPool", "ProcessSettings", "adapter_client_id", "resume_pools"]

log = logging.getLogger("workbench.promotion.adapter_pool")

#: what a promoted adapter's OAuth client may do in its tenant
ADAPTER_ROLES = ("Development", "StreamDataWriter")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def adapter_client_id(tenant_id: str, name: str) -> str:
    return f"adapter.{tenant_id}.{name}"


@dataclass(frozen=True)
class ProcessSettings:
    """Where a promoted adapter's process connects, kept in the artifact (``details.process``)."""

    controller_url: str
    api_url: str
    #: connect with a client-credentials token of the adapter's own OAuth client
    auth: bool = True
    #: the Identity service the token comes from (empty: the adapter's configured issuer)
    identity_url: str = ""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ProcessSettings:
        """From the promotion's options (``controller_url``, ``api_url``, ``identity_url``,
        ``no_auth``), else the settings (``WORKBENCH_COMMUNICATION_CONTROLLER_URL`` or the
        controller ``workbench up`` runs, ``WORKBENCH_API_URL``, ``WORKBENCH_IDENTITY_URL`` or
        the issuer)."""
        from workbench.settings import Settings

        settings = Settings()
        controller = (
            options.get("controller_url")
            or settings.neighbour_url("communication_controller")
            or f"http://{settings.service_host}:5015"
        )
        api = options.get("api_url") or settings.asset_repository_url()
        identity = options.get("identity_url") or settings.identity_url or settings.issuer_url()
        return cls(
            str(controller).rstrip("/"),
            str(api).rstrip("/"),
            not options.get("no_auth"),
            str(identity).rstrip("/"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "controllerUrl": self.controller_url,
            "apiUrl": self.api_url,
            "auth": self.auth,
            "identityUrl": self.identity_url,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessSettings:
        return cls(
            str(data["controllerUrl"]),
            str(data["apiUrl"]),
            bool(data.get("auth", True)),
            str(data.get("identityUrl") or ""),
        )


#: supervisors this process started, kept so that a still-running one is not garbage collected
#: (and so that one that exited is reaped)
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


def _alive(pid: int | None, state_file: Path) -> bool:
    """Whether ``pid`` is the supervisor writing ``state_file`` and still runs (a pid from an
    old state file may belong to another process by now: it is never signalled)."""
    if not pid:
        return False
    if pid in _SPAWNED:
        return _SPAWNED[pid].poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours: a supervisor runs as the user who promoted
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return str(state_file).encode() in arguments


def _stop_orphan(state: dict[str, Any]) -> None:
    """SIGTERM the adapter of a supervisor that is gone (killed with SIGKILL, crashed): the
    adapter's pid is signalled only while its command line is still the one recorded."""
    pid = int(state.get("adapterPid") or 0)
    if not pid or state.get("state") == "stopped":
        return
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return
    if [a.decode(errors="replace") for a in arguments] == list(state.get("command") or []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


class AdapterPool:
    """The adapter processes of one tenant's promotions (see the module docstring)."""

    def __init__(self, workbench: Any, tenant_id: str) -> None:
        self.workbench = workbench
        self.tenant_id = tenant_id
        self.root = Path(workbench.registry.tenant_dir(tenant_id)) / "promotions"

    def _dir(self, name: str) -> Path:
        return self.root / name / "pool"

    def current(self, name: str) -> dict[str, Any] | None:
        return _read(self._dir(name) / "current.json")

    def status(self, name: str) -> dict[str, Any] | None:
        """The live process of promotion ``name``: version, pids, state, restarts, log file."""
        current = self.current(name)
        if current is None:
            return None
        version = int(current["version"])
        folder = self._dir(name) / f"v{version}"
        state = _read(folder / "supervisor.json") or {}
        alive = _alive(state.get("pid"), folder / "supervisor.json")
        return {
            "version": version,
            "state": state.get("state", "starting") if alive else "stopped",
            "supervisorPid": state.get("pid"),
            "adapterPid": state.get("adapterPid") if alive else None,
            "restarts": state.get("restarts", 0),
            "lastExit": state.get("lastExit"),
            "lastExitAt": state.get("lastExitAt"),
            "lastError": state.get("lastError"),
            "backoffSeconds": state.get("backoffSeconds") if alive else None,
            "startedAt": state.get("startedAt"),
            "log": str(folder / "adapter.log"),
            "customNodes": (folder / "nodes.py").is_file(),
            "resumedAt": (current.get("resumed") or {}).get("at"),
            "resumedBy": (current.get("resumed") or {}).get("by"),
        }

    # ---- switching

    def switch(
        self,
        name: str,
        version: int,
        adapter_rt_id: str,
        settings: ProcessSettings,
        nodes_source: str,
    ) -> dict[str, Any]:
        """Make version ``version``'s process the live one (call under the promotion's lock)."""
        self._dir(name).mkdir(parents=True, exist_ok=True)
        previous = self.current(name)
        previous_version = int(previous["version"]) if previous else None
        self._stop_version(name, previous_version)
        try:
            started = self._start(name, version, adapter_rt_id, settings, nodes_source)
        except BackendUnavailable:
            if previous is not None and previous_version is not None:
                self._restart(name, previous)
            raise
        _write(
            self._dir(name) / "current.json",
            {
                "version": version,
                "supervisorPid": started,
                "adapterRtId": adapter_rt_id,
                "settings": settings.to_dict(),
                "at": time.time(),
            },
        )
        status = self.status(name) or {}
        return {**status, "replaced": previous_version}

    def stop(self, name: str) -> dict[str, Any] | None:
        """Stop the live process (retire); the pointer goes, the logs stay."""
        current = self.current(name)
        if current is None:
            return None
        self._stop_version(name, int(current["version"]))
        status = self.status(name)
        (self._dir(name) / "current.json").unlink(missing_ok=True)
        return status

    def resume(self, name: str, version: int, *, by: str) -> dict[str, Any]:
        """Start deployed version ``version``'s process again when its supervisor is gone (a
        reboot, a kill): ``action`` running (its supervisor still runs: kept), started, skipped
        (no process in the pool: promoted with ``--no-start``) or failed (``error``). Call under
        the promotion's lock: two resumes at once start one process."""
        found = {"tenant": self.tenant_id, "name": name, "version": version}
        current = self.current(name)
        if current is None:
            return {
                **found,
                "action": "skipped",
                "reason": "no process in the local pool (promoted with --no-start); start one "
                f"with `workbench promotions rollback --tenant {self.tenant_id} {name} "
                f"--to {version}`",
            }
        if int(current["version"]) != version:
            return {
                **found,
                "action": "failed",
                "error": f"the pool's live version of {name} is {current['version']}, the "
                f"deployed one {version}; fix: `workbench promotions rollback --tenant "
                f"{self.tenant_id} {name} --to {version}`",
            }
        state_file = self._dir(name) / f"v{version}" / "supervisor.json"
        state = _read(state_file) or {}
        if _alive(state.get("pid"), state_file):
            return {**found, "action": "running", "process": self.status(name)}
        _stop_orphan(state)  # an adapter whose supervisor was killed (not after a reboot)
        try:
            pid = self._restart(name, current)
        except (BackendUnavailable, OSError, KeyError, ValueError) as exc:
            return {**found, "action": "failed", "error": str(exc)}
        _write(
            self._dir(name) / "current.json",
            {**current, "supervisorPid": pid, "resumed": {"at": time.time(), "by": by}},
        )
        return {**found, "action": "started", "process": self.status(name)}

    def _restart(self, name: str, previous: dict[str, Any]) -> int:
        version = int(previous["version"])
        nodes = self._dir(name) / f"v{version}" / "nodes.py"
        source = nodes.read_text(encoding="utf-8") if nodes.is_file() else ""
        settings = ProcessSettings.from_dict(previous["settings"])
        return self._start(name, version, str(previous["adapterRtId"]), settings, source)

    def _stop_version(self, name: str, version: int | None) -> None:
        if version is None:
            return
        state_file = self._dir(name) / f"v{version}" / "supervisor.json"
        state = _read(state_file) or {}
        pid = int(state.get("pid") or 0)
        if not _alive(pid, state_file):
            _stop_orphan(state)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid, state_file) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling another session's process: no handle to wait on
        if _alive(pid, state_file):
            os.killpg(pid, signal.SIGKILL)
        spawned = _SPAWNED.pop(pid, None)
        if spawned is not None:
            spawned.wait()

    def _start(
        self,
        name: str,
        version: int,
        adapter_rt_id: str,
        settings: ProcessSettings,
        nodes_source: str,
    ) -> int:
        folder = self._dir(name) / f"v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        state_file = folder / "supervisor.json"
        state_file.unlink(missing_ok=True)
        env = node_process_environment()
        if nodes_source:
            (folder / "nodes.py").write_text(nodes_source, encoding="utf-8")
            env["WORKBENCH_NODE_PLUGINS"] = str(folder / "nodes.py")
        else:
            (folder / "nodes.py").unlink(missing_ok=True)
        if settings.auth:
            env["WORKBENCH_CLIENT_ID"], env["WORKBENCH_CLIENT_SECRET"] = self._client(name)
        command = node_process_command(
            "workbench",
            "adapter",
            "run",
            "--tenant",
            self.tenant_id,
            "--adapter",
            adapter_rt_id,
            "--controller",
            settings.controller_url,
            "--api-url",
            settings.api_url,
            "--data-dir",
            str(self.workbench.home),
        )
        if settings.auth and settings.identity_url:
            command += ["--identity-url", settings.identity_url]
        supervisor = [
            sys.executable,
            "-m",
            "workbench.promotion.adapter_supervisor",
            str(state_file),
            str(self._dir(name) / "current.json"),
            str(version),
            "--",
            *command,
        ]
        with (folder / "supervisor.log").open("ab") as out:
            process = subprocess.Popen(
                supervisor,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives the promoting command (and its terminal)
            )
        _SPAWNED[process.pid] = process
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            state = _read(state_file)
            if state and state.get("adapterPid"):
                return process.pid
            if process.poll() is not None:
                break
            time.sleep(0.05)  # the supervisor writes its state file once the adapter started
        log = (folder / "supervisor.log").read_text(encoding="utf-8", errors="replace")
        if process.poll() is None:
            process.kill()
        raise BackendUnavailable(
            f"the process of adapter promotion {name}@{version} did not start within "
            f"{START_TIMEOUT:g} s: {log.strip()[-500:] or 'no output'}"
        )

    def _client(self, name: str) -> tuple[str, str]:
        """The adapter's own OAuth client (created the first time) and its secret, kept in
        ``<home>/secrets/adapters/<tenant>/<client>`` (0600)."""
        from workbench.identity.tenant_clients import tenant_client_secret

        client_id = adapter_client_id(self.tenant_id, name)
        secret = tenant_client_secret(
            self.workbench,
            self.tenant_id,
            client_id,
            name=f"Adapter {name} of {self.tenant_id}",
            roles=ADAPTER_ROLES,
            secret_file=Path(self.workbench.home)
            / "secrets"
            / "adapters"
            / self.tenant_id
            / client_id,
            actor="promotion",
        )
        return client_id, secret


def resume_pools(
    workbench: Any, tenant_ids: list[str] | None = None, *, by: str = "resume"
) -> list[dict[str, Any]]:
    """Bring back the process of every deployed (not retired) adapter promotion of
    ``tenant_ids`` (default: every tenant) whose supervisor is gone, one promotion at a time
    under its lock; see :meth:`AdapterPool.resume` for what each entry says. Logs each start
    and failure (``workbench.promotion.adapter_pool``)."""
    from workbench.promotion.artifacts import ArtifactStore

    ids = tenant_ids if tenant_ids is not None else [t.id for t in workbench.registry.list()]
    results: list[dict[str, Any]] = []
    for tenant_id in ids:
        store = ArtifactStore(Path(workbench.registry.tenant_dir(tenant_id)), tenant_id)
        pool = AdapterPool(workbench, tenant_id)
        for deployment in store.deployments("adapter"):
            try:
                with store.locked(deployment.name):
                    live = store.deployment(deployment.name)  # a retire may have come first
                    if live is None or live.state != "deployed":
                        continue
                    result = pool.resume(deployment.name, live.version, by=by)
            except (WorkbenchError, OSError) as exc:
                result = {
                    "tenant": tenant_id,
                    "name": deployment.name,
                    "version": deployment.version,
                    "action": "failed",
                    "error": str(exc),
                }
            results.append(result)
            process = result.get("process") or {}
            extra = {
                "tenant": tenant_id,
                "promotion": f"{result['name']}@{result['version']}",
                "action": result["action"],
                "supervisorPid": process.get("supervisorPid"),
                "adapterPid": process.get("adapterPid"),
                "by": by,
            }
            if result["action"] == "failed":
                log.warning("adapter process not resumed: %s", result["error"], extra=extra)
            elif result["action"] == "started":
                log.info("adapter process resumed", extra=extra)
            else:
                log.debug("adapter process %s", result["action"], extra=extra)
    return results
