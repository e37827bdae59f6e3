"""JupyterHub on Kubernetes (``platform/kubernetes/base/hub``): KubeSpawner, tenant profiles.

The hub Deployment runs ``jupyterhub -f /opt/workbench/hub_config/kubernetes_config.py`` in the
service image (which has ``jupyterhub-kubespawner``). Same login as on one machine
(``WorkbenchAuthenticator`` against the Identity service); servers are pods of the notebook image,
one per user and tenant, offered only for the user's ``allowed_tenants``
(``workbench.hub.kube_profiles``). Settings (``workbench.settings.Settings``, from the
``workbench-settings`` ConfigMap, the ``hub-secrets`` Secret and the Deployment's environment):

WORKBENCH_IDENTITY_ISSUER       the Identity service's public URL (tokens' iss)
WORKBENCH_HUB_PUBLIC_URL        the hub's public URL (https://<host>, TLS ends at the ingress)
WORKBENCH_HUB_CLIENT_ID         the hub's OAuth client in the system tenant
WORKBENCH_HUB_CLIENT_SECRET     its secret
WORKBENCH_API_URL               the Asset Repository as notebook pods reach it
WORKBENCH_HUB_DEFAULT_TENANT    tenant pre-filled on the login page
WORKBENCH_HUB_NOTEBOOK_IMAGE    the notebook image (tenant kernels, workbench extension)
JUPYTERHUB_CRYPT_KEY            key encrypting auth_state (hex, 32 bytes; JupyterHub's variable)
POD_NAMESPACE                   the hub's namespace (downward API; default workbench)
"""

# ruff: noqa: F821  (`c` is injected by traitlets' config loader)
from __future__ import annotations

import os

from workbench.hub.kube_profiles import pass_token, server_environment, tenant_profiles
from workbench.settings import Settings

settings = Settings()

# --- the hub: behind the proxy Service, its state on a volume ---------------------------
public_url = settings.hub_public_url.rstrip("/")
c.JupyterHub.bind_url = "http://:8000"  # what the proxy pod listens on, behind the ingress
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://hub:8081"
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = False  # servers outlive a hub restart
c.JupyterHub.allow_named_servers = True  # one server per tenant
c.ConfigurableHTTPProxy.should_start = False  # the proxy Deployment
c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
c.CryptKeeper.keys = [bytes.fromhex(os.environ.get("JUPYTERHUB_CRYPT_KEY", ""))]

# --- login through the Identity service ------------------------------------------------
c.JupyterHub.authenticator_class = "workbench.hub.authenticator.WorkbenchAuthenticator"
c.WorkbenchAuthenticator.identity_url = settings.issuer_url()
# browsers go to the public issuer; the hub's own calls stay inside the cluster
internal = (settings.identity_url or settings.issuer_url()).rstrip("/")
c.WorkbenchAuthenticator.token_url = f"{internal}/token"
c.WorkbenchAuthenticator.userdata_url = f"{internal}/userinfo"
c.WorkbenchAuthenticator.client_id = settings.hub_client_id
c.WorkbenchAuthenticator.client_secret = (
    settings.hub_client_secret.get_secret_value() if settings.hub_client_secret else ""
)
c.WorkbenchAuthenticator.oauth_callback_url = f"{public_url}/hub/oauth_callback"
c.WorkbenchAuthenticator.default_tenant = settings.hub_default_tenant
c.WorkbenchAuthenticator.admin_roles = {"AdminPanelManagement"}
c.WorkbenchAuthenticator.admin_tenants = {"system"}

# --- tenant servers: KubeSpawner pods, one profile per allowed tenant -------------------
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = os.environ.get("POD_NAMESPACE", "workbench")
c.KubeSpawner.image = settings.hub_notebook_image
# the image's entry point: the tenant's kernel spec, then jupyterhub-singleuser
c.KubeSpawner.cmd = ["notebook-start"]
c.KubeSpawner.profile_list = tenant_profiles
c.KubeSpawner.auth_state_hook = pass_token
c.KubeSpawner.environment = server_environment(
    settings.api_url, settings.neighbour_url("bot_service")
)
c.KubeSpawner.uid = 10001  # never root in the pod
c.KubeSpawner.gid = 10001
c.KubeSpawner.fs_gid = 10001
c.KubeSpawner.pod_name_template = "nb-{username}--{servername}"
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "5Gi"
c.KubeSpawner.volume_mounts = [{"name": "work", "mountPath": "/home/workbench/work"}]
c.KubeSpawner.notebook_dir = "/home/workbench/work"
c.KubeSpawner.cpu_guarantee = 0.25
c.KubeSpawner.cpu_limit = 2
c.KubeSpawner.mem_guarantee = "1G"
c.KubeSpawner.mem_limit = "4G"
# KubeSpawner labels the pods app.kubernetes.io/component=singleuser-server (network policies)
c.KubeSpawner.extra_labels = {"app.kubernetes.io/part-of": "mesh-workbench"}
c.KubeSpawner.start_timeout = 300
