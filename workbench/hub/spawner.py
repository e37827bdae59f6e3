"""The tenant-aware spawner: one JupyterLab server per user, working on one of their tenants.

:class:`TenantSpawner` is JupyterHub's ``LocalProcessSpawner`` (one machine) with:

- an options form listing only the user's ``allowed_tenants`` (from ``auth_state``); a tenant
  outside that list is refused, from the form (403) and from the REST API (the spawn fails);
- the server's environment: ``WORKBENCH_API_URL``, ``WORKBENCH_TENANT``, ``WORKBENCH_API_TOKEN``
  (the user's access token, refreshed before spawning when it is close to expiry), ``HOME`` and
  ``JUPYTER_PATH``;
- a per-tenant working directory ``<work_root>/<tenant>/<user>`` seeded with the tutorial
  notebooks (existing files are never overwritten), and the tenant's kernel spec
  ("Workbench · <tenant>", written with the notebook side's installer) as the only and default
  kernel.

What runs as whom: JupyterHub users are Identity users, not system accounts, so the spawner does
not look up a system user per hub user. When the hub runs as root, every single-user server runs
as the unprivileged account :attr:`TenantSpawner.run_as` (default ``nobody``; the working
directory is given to it) — provided that account can execute the hub's Python (a probe runs
once); if it cannot (e.g. the interpreter lives under ``/root``), the spawner logs a warning and
runs the server as the hub's user, or fails when :attr:`TenantSpawner.require_run_as` is set.
When the hub does not run as root, servers run as the hub's user. For per-user isolation use
containers (KubeSpawner, see ``hub_config/README.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# jupyter_client.kernelspec: imported at hub start, not on the first spawn (about 1 s there)
import jupyter_client.kernelspec  # noqa: F401
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Bool, List, Unicode, default

from workbench.notebook.kernelspec import install_kernel_spec
from workbench.tenancy.ids import validate_tenant_id

__all__ = [
    "SINGLEUSER_LAUNCHER",
    "TenantNotAllowed",
    "TenantSpawner",
    "can_run_as",
    "wait_listening",
]


class TenantNotAllowed(web.HTTPError):
    """A spawn asked for a tenant the user may not use (shown to the user as is)."""

    def __init__(self, user: str, tenant: str) -> None:
        message = (
            f"{user} may not use tenant {tenant!r}: choose one of your tenants, or ask an "
            "administrator to grant it"
        )
        super().__init__(403, message)
        self.jupyterhub_message = message


#: How a tenant server starts: ``jupyterhub.singleuser`` with ``rfc3987_syntax`` hidden. Jupyter
#: Server imports jsonschema (through jupyter_events), whose format module imports
#: ``rfc3987_syntax`` when it is installed, and that builds an Earley grammar at import: 1.5-3 s
#: of every server start, for the "iri" string formats only (no Jupyter event schema uses them;
#: jsonschema skips formats it has no checker for). The arguments follow as for ``-m``.
SINGLEUSER_LAUNCHER = (
    "import sys; sys.modules['rfc3987_syntax'] = None; "
    "from jupyterhub.singleuser import main; sys.exit(main())"
)


async def wait_listening(
    host: str, port: int, *, alive: Callable[[], bool], timeout: float, interval: float = 0.05
) -> bool:
    """Poll until ``host:port`` accepts connections (True), ``alive()`` turns false or
    ``timeout`` passes (False). A cheap TCP connect, unlike the hub's HTTP check, whose
    exponential backoff (up to 5 s between tries) notices a started server up to seconds late."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and alive():
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), interval * 4)
        except (OSError, TimeoutError):
            await asyncio.sleep(interval)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


@functools.cache
def can_run_as(account: str, python: str) -> bool:
    """Whether ``account`` can execute ``python`` (probed once per process; needs root)."""
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        return False

    def drop() -> None:
        os.setgid(entry.pw_gid)
        os.setgroups([])
        os.setuid(entry.pw_uid)

    try:
        result = subprocess.run(
            [python, "-c", "import workbench"],
            preexec_fn=drop,
            capture_output=True,
            timeout=60,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": "/"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


class TenantSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """A local JupyterLab server bound to one of the user's tenants."""

    api_url = Unicode(
        "http://127.0.0.1:5001",
        config=True,
        help="The Asset Repository URL servers and kernels use (WORKBENCH_API_URL).",
    )
    work_root = Unicode(
        config=True,
        help="Root of the per-tenant working directories (<work_root>/<tenant>/<user>).",
    )
    seed_notebooks = Unicode(
        "",
        config=True,
        help="Directory whose *.ipynb files are copied into a new working directory.",
    )
    run_as = Unicode(
        "nobody",
        config=True,
        help="Account single-user servers run as when the hub runs as root ('' = the hub's).",
    )
    require_run_as = Bool(
        False,
        config=True,
        help="Fail the spawn instead of running as the hub's user when run_as cannot run "
        "the hub's Python.",
    )

    disabled_server_extensions = List(
        Unicode(),
        ["panel.io.jupyter_server_extension", "jupyter_lsp"],
        config=True,
        help="Jupyter server extensions switched off in tenant servers.",
    )

    @default("work_root")
    def _work_root_default(self) -> str:
        return str(Path("~/.workbench/hub/work").expanduser())

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        # the hub's own interpreter: no reliance on PATH, same packages as the hub
        # (SINGLEUSER_LAUNCHER: jupyterhub.singleuser without a 1.5-3 s import, see there)
        return [sys.executable, "-c", SINGLEUSER_LAUNCHER]

    @default("default_url")
    def _default_url_default(self) -> str:
        return "/lab"

    @default("options_form")
    def _options_form_default(self) -> Callable[[Any], Any]:
        return _render_options_form

    # ------------------------------------------------------------------ tenants

    async def allowed_tenants(self) -> list[str]:
        """The tenants the user may work on (``auth_state["allowed_tenants"]``)."""
        state = await self.user.get_auth_state() or {}
        return [str(t) for t in state.get("allowed_tenants") or []]

    async def run_options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, Any]:
        tenant = (form_data.get("tenant") or [""])[0].strip()
        if not tenant:
            raise web.HTTPError(400, "choose a tenant")
        if tenant not in await self.allowed_tenants():
            raise TenantNotAllowed(self.user.name, tenant)
        return {"tenant": tenant}

    async def chosen_tenant(self) -> str:
        """The tenant of this spawn: ``user_options["tenant"]`` (the user's login tenant when
        there is none and it is allowed), checked against ``allowed_tenants``."""
        allowed = await self.allowed_tenants()
        tenant = str((self.user_options or {}).get("tenant") or "")
        if not tenant:
            state = await self.user.get_auth_state() or {}
            tenant = str(state.get("tenant_id") or (allowed[0] if allowed else ""))
        if not tenant or tenant not in allowed:
            raise TenantNotAllowed(self.user.name, tenant or "(none)")
        validate_tenant_id(tenant, allow_system=True)
        return tenant

    # ------------------------------------------------------------------ start

    def working_directory(self, tenant: str) -> Path:
        return Path(self.work_root) / tenant / str(self.user.name)

    def _run_as_entry(self) -> pwd.struct_passwd | None:
        """The account to switch to, or None to run as the hub's user."""
        if os.geteuid() != 0 or not self.run_as:
            return None
        if can_run_as(self.run_as, self.cmd[0]):
            return pwd.getpwnam(self.run_as)
        message = (
            f"account {self.run_as!r} cannot run {self.cmd[0]} (is the interpreter readable by it?)"
        )
        if self.require_run_as:
            raise web.HTTPError(500, message)
        self.log.warning("%s: running the server of %s as root", message, self.user.name)
        return None

    def _prepare_directory(self, tenant: str, owner: pwd.struct_passwd | None) -> Path:
        work = self.working_directory(tenant)
        work.mkdir(parents=True, exist_ok=True)
        if self.seed_notebooks:
            for notebook in sorted(Path(self.seed_notebooks).glob("*.ipynb")):
                target = work / notebook.name
                if not target.exists():
                    shutil.copyfile(notebook, target)
        prefix = work / ".workbench-jupyter"
        install_kernel_spec(tenant, prefix=prefix, api_url=self.api_url)
        if owner is not None:
            for parent in (Path(self.work_root), work.parent):
                parent.chmod(parent.stat().st_mode | 0o011)  # traversable, not listable
            for path in [work, *work.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        return work

    async def start(self) -> Any:
        tenant = await self.chosen_tenant()
        state = await self.user.get_auth_state() or {}
        token = state.get("access_token")
        if not token:
            raise web.HTTPError(403, "no access token in auth_state: log in again")
        owner = await asyncio.to_thread(self._run_as_entry)
        work = await asyncio.to_thread(self._prepare_directory, tenant, owner)
        self._tenant, self._work, self._owner, self._token = tenant, work, owner, str(token)
        self.notebook_dir = str(work)
        self.log.info(
            "spawning %s on tenant %s in %s as %s",
            self.user.name,
            tenant,
            work,
            owner.pw_name if owner else "the hub's user",
        )
        started = await super().start()
        # return once the server listens, so the hub's first readiness check succeeds
        if isinstance(started, tuple) and len(started) == 2:
            host, port = started
            await wait_listening(
                str(host or "127.0.0.1"),
                int(port),
                alive=lambda: self.proc is not None and self.proc.poll() is None,
                # past that, the hub's own check (http_timeout) takes over as before
                timeout=float(self.start_timeout) / 2,
            )
        return started

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        tenant = getattr(self, "_tenant", None)
        if tenant is not None:
            env["WORKBENCH_API_URL"] = self.api_url
            env["WORKBENCH_TENANT"] = tenant
            env["WORKBENCH_API_TOKEN"] = self._token
            env["JUPYTER_PATH"] = str(self._work / ".workbench-jupyter" / "share" / "jupyter")
        return env

    def get_args(self) -> list[str]:
        args: list[str] = super().get_args()
        tenant = getattr(self, "_tenant", None)
        if tenant is not None:
            kernel = f"workbench-{tenant}"
            # the tenant's kernel is the only one offered, and the default
            args += [
                f"--MappingKernelManager.default_kernel_name={kernel}",
                f"--KernelSpecManager.allowed_kernelspecs={kernel}",
                "--KernelSpecManager.ensure_native_kernel=False",
                # server extensions a tenant server does not use (they cost seconds at start)
                *(
                    f"--ServerApp.jpserver_extensions={name}=False"
                    for name in self.disabled_server_extensions
                ),
            ]
            if os.geteuid() == 0 and getattr(self, "_owner", None) is None:
                args.append("--ServerApp.allow_root=True")  # the documented fallback
        return args

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        owner, work = getattr(self, "_owner", None), str(getattr(self, "_work", "/"))

        def preexec() -> None:
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)
            os.chdir(work)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = str(getattr(self, "_work", self.work_root))
        env["SHELL"] = "/bin/sh"
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        return paths  # internal_ssl is not supported by this spawner


async def _render_options_form(spawner: TenantSpawner) -> str:
    """The spawn page: a select of the user's tenants (only theirs), login tenant first."""
    tenants = await spawner.allowed_tenants()
    if not tenants:
        return "<p>You have no tenant to work on; ask an administrator to grant you one.</p>"
    state = await spawner.user.get_auth_state() or {}
    current = state.get("tenant_id")
    options = "".join(
        f"<option value='{html.escape(t)}'{' selected' if t == current else ''}>"
        f"{html.escape(t)}</option>"
        for t in tenants
    )
    return (
        "<label for='workbench-tenant'>Tenant</label>"
        f"<select id='workbench-tenant' name='tenant' class='form-control'>{options}</select>"
        "<p class='help-block'>The server, its kernels and the API token work on this "
        "tenant.</p>"
    )
