"""JupyterHub configuration of Mesh Workbench (``workbench serve hub`` loads it).

Everything comes from the project's settings tree (``workbench.settings.Settings``, set as
``WORKBENCH_*`` in the environment), so the same file serves ``workbench up``, the tests and a
hand-started hub:

WORKBENCH_HOME                  data directory (hub state in <home>/hub, secrets in <home>/secrets)
WORKBENCH_HUB_BIND_URL          public URL the proxy listens on (default http://127.0.0.1:8000)
WORKBENCH_HUB_API_PORT          the hub's internal API port (default 8081)
WORKBENCH_HUB_PROXY_API_PORT    configurable-http-proxy's API port (default 8001)
WORKBENCH_IDENTITY_ISSUER       the Identity service (default http://<service_host>:5003)
WORKBENCH_HUB_CLIENT_ID         the hub's OAuth client (default jupyterhub; registered by up)
WORKBENCH_HUB_CLIENT_SECRET     its secret (default: <home>/secrets/hub-client-secret)
WORKBENCH_API_URL               the Asset Repository servers use (default http://<host>:5001)
WORKBENCH_BOT_SERVICE_URL       the Bot Service kernels promote through (default http://<host>:5009)
WORKBENCH_HUB_DEFAULT_TENANT    tenant pre-filled on the login page
WORKBENCH_HUB_ISOLATION         auto (default: own accounts as root, else bubblewrap) | accounts |
                                bubblewrap | none
WORKBENCH_HUB_KERNEL_PYTHON     interpreter of servers and kernels (default: make kernel-venv's
                                /opt/workbench-kernels/bin/python when it exists, else the hub's)
WORKBENCH_HUB_WORK_ROOT         working directories (default /var/lib/workbench/hub-work/<hash>
                                as root, outside the 0700 data directory; else <home>/hub-work)
WORKBENCH_HUB_NOTEBOOKS         notebooks copied into new working directories (default notebooks/)
JUPYTERHUB_CRYPT_KEY            JupyterHub's own key variable; default <home>/secrets/hub-crypt-key
"""

# ruff: noqa: F821  (`c` is injected by traitlets' config loader)
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from workbench.hub.provisioning import (
    crypt_key,
    hub_client_secret,
    hub_state_dir,
    proxy_command,
)
from workbench.settings import Settings

settings = Settings()
home = settings.home.expanduser().resolve()
state = hub_state_dir(home)
project = Path(__file__).resolve().parent.parent

# --- the hub and its proxy ---------------------------------------------------------------
c.JupyterHub.bind_url = settings.hub_bind_url
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings.hub_api_port
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.allow_named_servers = True  # one server per tenant, if the user wants several
c.JupyterHub.cleanup_servers = True
c.JupyterHub.template_vars = {"announcement_login": "Mesh Workbench notebooks"}

c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub_proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
# the project's copy (make hub-proxy), else one on PATH
c.ConfigurableHTTPProxy.command = [proxy_command() or "configurable-http-proxy"]

# auth_state is encrypted with a key kept in the data directory (generated on first start),
# unless JupyterHub's own variable names one
c.CryptKeeper.keys = [bytes.fromhex(os.environ.get("JUPYTERHUB_CRYPT_KEY") or crypt_key(home))]

# --- login through the Identity service ------------------------------------------------
c.JupyterHub.authenticator_class = "workbench.hub.authenticator.WorkbenchAuthenticator"
c.WorkbenchAuthenticator.identity_url = settings.issuer_url()
c.WorkbenchAuthenticator.client_id = settings.hub_client_id
c.WorkbenchAuthenticator.client_secret = (
    settings.hub_client_secret.get_secret_value() if settings.hub_client_secret else ""
) or (hub_client_secret(home) or "")
c.WorkbenchAuthenticator.oauth_callback_url = (
    c.JupyterHub.bind_url.rstrip("/") + "/hub/oauth_callback"
)
c.WorkbenchAuthenticator.default_tenant = settings.hub_default_tenant
c.WorkbenchAuthenticator.admin_roles = {"AdminPanelManagement"}
c.WorkbenchAuthenticator.admin_tenants = {"system"}

# --- tenant servers ----------------------------------------------------------------------
c.JupyterHub.spawner_class = "workbench.hub.spawner.TenantSpawner"
c.TenantSpawner.api_url = settings.asset_repository_url()
# %promote and `workbench bots` in tenant kernels reach the Bot Service (a service of its own)
# (WORKBENCH_BOT_SERVICE_URL, else the one `workbench up` runs: WORKBENCH_BOT_SERVICE_PORT)
c.TenantSpawner.bot_service_url = (
    settings.neighbour_url("bot_service") or f"http://{settings.service_host}:5009"
)
# servers run as accounts of their own (root) or in a sandbox hiding the data directory
c.TenantSpawner.isolation = settings.hub_isolation
c.TenantSpawner.data_dir = str(home)
c.TenantSpawner.account_namespace = str(home)
kernel_python = Path("/opt/workbench-kernels/bin/python")
c.TenantSpawner.python = settings.hub_kernel_python or (
    str(kernel_python) if kernel_python.exists() else sys.executable
)
# as root outside the (0700) data directory: the per-user accounts must reach their directory
home_key = hashlib.sha256(str(home).encode()).hexdigest()[:10]
c.TenantSpawner.work_root = settings.hub_work_root or (
    f"/var/lib/workbench/hub-work/{home_key}" if os.geteuid() == 0 else str(home / "hub-work")
)
c.TenantSpawner.seed_notebooks = settings.hub_notebooks or str(project / "notebooks")
c.TenantSpawner.start_timeout = 90
c.TenantSpawner.http_timeout = 90
