"""The tenant-aware spawner: one JupyterLab server per user, working on one of their tenants.

:class:`TenantSpawner` is JupyterHub's ``LocalProcessSpawner`` (one machine) with:

- an options form listing only the user's ``allowed_tenants`` (from ``auth_state``); a tenant
  outside that list is refused, from the form (403) and from the REST API (the spawn fails);
- the server's environment: ``WORKBENCH_API_URL``, ``WORKBENCH_BOT_SERVICE_URL``,
  ``WORKBENCH_TENANT``, ``WORKBENCH_API_TOKEN``
  (the user's access token, refreshed before spawning when it is close to expiry), ``HOME`` and
  ``JUPYTER_PATH``;
- a per-tenant working directory ``<work_root>/<tenant>/<user>`` seeded with the tutorial
  notebooks (existing files are never overwritten), and the tenant's kernel spec
  ("Workbench · <tenant>", written with the notebook side's installer) as the only and default
  kernel.

What runs as whom (:attr:`TenantSpawner.isolation`, default ``auto``): JupyterHub users are
Identity users, not system accounts. When the hub runs as root (``accounts``), every hub user gets
an unprivileged system account of their own, ``wb-<hash>``, created on the first spawn
(:mod:`workbench.hub.accounts`); the server and its kernels run as it, with
:attr:`TenantSpawner.python` (an interpreter that account can run: ``make kernel-venv`` builds
one outside ``/root``; a spawn fails with a clear message otherwise, it never falls back to
root), the working directory is theirs (0700) and the data directory is made 0700 (secrets
0600). When the hub does not run as root (``bubblewrap``), the server runs as the hub's account
inside a bubblewrap sandbox that hides the data directory and the other working directories
(:mod:`workbench.hub.sandbox`); without bubblewrap the spawn is refused. ``none`` switches the
isolation off (one user on their own machine). On Kubernetes use KubeSpawner
(``hub_config/README.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import pwd
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# jupyter_client.kernelspec: imported at hub start, not on the first spawn (about 1 s there)
import jupyter_client.kernelspec  # noqa: F401
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import CaselessStrEnum, List, Unicode, default

from workbench.hub.accounts import (
    DEFAULT_ADD_USER_CMD,
    AccountError,
    account_name,
    can_run,
    ensure_account,
    protect_data_directory,
)
from workbench.hub.sandbox import bubblewrap_available, bubblewrap_command
from workbench.notebook.kernelspec import install_kernel_spec
from workbench.tenancy.ids import validate_tenant_id

__all__ = [
    "SINGLEUSER_LAUNCHER",
    "TenantNotAllowed",
    "TenantSpawner",
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


class TenantSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """A local JupyterLab server bound to one of the user's tenants."""

    api_url = Unicode(
        "http://127.0.0.1:5001",
        config=True,
        help="The Asset Repository URL servers and kernels use (WORKBENCH_API_URL).",
    )
    bot_service_url = Unicode(
        "http://127.0.0.1:5009",
        config=True,
        help="The Bot Service URL kernels promote through (%promote; WORKBENCH_BOT_SERVICE_URL).",
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
    python = Unicode(
        sys.executable,
        config=True,
        help="The interpreter of tenant servers and kernels (with per-user accounts it must "
        "be one they can run, e.g. make kernel-venv's /opt/workbench-kernels/bin/python).",
    )
    isolation = CaselessStrEnum(
        ["auto", "accounts", "bubblewrap", "none"],
        "auto",
        config=True,
        help="How tenant servers are kept from the platform's data and from each other: "
        "per-user system accounts (needs a root hub), a bubblewrap sandbox, or none; auto: "
        "accounts as root, else bubblewrap.",
    )
    data_dir = Unicode(
        "",
        config=True,
        help="The platform's data directory: made 0700 (accounts) or hidden (bubblewrap).",
    )
    account_namespace = Unicode(
        "",
        config=True,
        help="Mixed into the account names' hash (the data directory: platforms on one "
        "machine get different accounts).",
    )
    add_user_cmd = List(
        Unicode(),
        list(DEFAULT_ADD_USER_CMD),
        config=True,
        help="Command creating a system account (USERNAME and COMMENT replaced, the name "
        "appended), as LocalAuthenticator.add_user_cmd.",
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
        return [self.python, "-c", SINGLEUSER_LAUNCHER]

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

    def isolation_mode(self) -> str:
        """``accounts``, ``bubblewrap`` or ``none`` for this hub (``auto`` resolved); raises
        when the chosen isolation cannot be had here."""
        mode = str(self.isolation)
        root = os.geteuid() == 0
        if mode == "auto":
            mode = "accounts" if root else "bubblewrap"
        if mode == "accounts" and not root:
            raise web.HTTPError(
                500,
                "per-user system accounts need a hub running as root; run it as root or set "
                "TenantSpawner.isolation = 'bubblewrap'",
            )
        if mode == "bubblewrap" and not bubblewrap_available():
            account = pwd.getpwuid(os.geteuid()).pw_name
            raise web.HTTPError(
                500,
                f"tenant servers would run as the hub's account {account!r} and could read the "
                f"data directory {self.data_dir or '(unset)'} and every user's working "
                "directory: install bubblewrap (apt-get install bubblewrap), run the hub as "
                "root (per-user accounts), or, for one user on their own machine, set "
                "TenantSpawner.isolation = 'none'",
            )
        return mode

    def _account(self) -> pwd.struct_passwd:
        """The hub user's own system account, created on the first spawn, checked to run
        :attr:`python`; the data directory is made private to the platform's account."""
        name = account_name(str(self.user.name), self.account_namespace)
        try:
            entry = ensure_account(
                name, hub_user=str(self.user.name), add_user_cmd=self.add_user_cmd
            )
        except AccountError as exc:
            raise web.HTTPError(500, str(exc)) from exc
        if not can_run(entry.pw_uid, entry.pw_gid, self.python):
            raise web.HTTPError(
                500,
                f"the account {name} of {self.user.name} cannot run {self.python} with "
                "jupyterhub.singleuser (an interpreter under /root is not readable by other "
                "accounts): build the kernels' virtualenv with `make kernel-venv` and set "
                "TenantSpawner.python (WORKBENCH_HUB_KERNEL_PYTHON) to its bin/python",
            )
        if self.data_dir:
            data = Path(self.data_dir).resolve()
            if Path(self.work_root).resolve().is_relative_to(data):
                raise web.HTTPError(
                    500,
                    f"the working directories {self.work_root} are inside the data directory "
                    f"{data}, which only the platform's account may enter: set "
                    "TenantSpawner.work_root (WORKBENCH_HUB_WORK_ROOT) outside it",
                )
            protect_data_directory(data)
        return entry

    def _prepare_directory(self, tenant: str, owner: pwd.struct_passwd | None) -> Path:
        work = self.working_directory(tenant)
        work.mkdir(parents=True, exist_ok=True)
        if self.seed_notebooks:
            for notebook in sorted(Path(self.seed_notebooks).glob("*.ipynb")):
                target = work / notebook.name
                if not target.exists():
                    shutil.copyfile(notebook, target)
        prefix = work / ".workbench-jupyter"
        install_kernel_spec(tenant, prefix=prefix, api_url=self.api_url, python=self.python)
        if owner is not None:
            for parent in (Path(self.work_root), work.parent):
                parent.chmod(0o711)  # traversable, not listable
            for path in [work, *work.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
            work.chmod(0o700)  # the user's own: no other account reads it
        return work

    def _sandboxed(self, command: list[str], work: Path) -> list[str]:
        """``command`` inside bubblewrap with the data directory and the other users' working
        directories hidden (this user's bound back)."""
        hide = [Path(p) for p in (self.data_dir, self.work_root) if p]
        return bubblewrap_command(command, hide=hide, keep=[work])

    async def start(self) -> Any:
        tenant = await self.chosen_tenant()
        state = await self.user.get_auth_state() or {}
        token = state.get("access_token")
        if not token:
            raise web.HTTPError(403, "no access token in auth_state: log in again")
        mode = self.isolation_mode()
        owner = await asyncio.to_thread(self._account) if mode == "accounts" else None
        work = await asyncio.to_thread(self._prepare_directory, tenant, owner)
        self._tenant, self._work, self._owner, self._token = tenant, work, owner, str(token)
        if not hasattr(self, "_base_cmd"):
            self._base_cmd = [str(a) for a in self.cmd]  # type: ignore[has-type]
        base = self._base_cmd
        self.cmd = self._sandboxed(base, work) if mode == "bubblewrap" else base
        self.notebook_dir = str(work)
        self.log.info(
            "spawning %s on tenant %s in %s as %s",
            self.user.name,
            tenant,
            work,
            owner.pw_name if owner else f"the hub's user ({mode})",
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
            env["WORKBENCH_BOT_SERVICE_URL"] = self.bot_service_url
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
                args.append("--ServerApp.allow_root=True")  # isolation 'none' as root
        return args

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        owner, work = getattr(self, "_owner", None), str(getattr(self, "_work", "/"))

        def preexec() -> None:
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)
                os.umask(0o077)
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
