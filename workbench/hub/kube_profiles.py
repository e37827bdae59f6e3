"""KubeSpawner profiles per tenant (``hub_config/kubernetes_config.py`` on Kubernetes).

KubeSpawner offers a ``profile_list`` (a list, or a callable given the spawner) and accepts a
spawn only for a profile in that list. :func:`tenant_profiles` builds it from the user's
``auth_state["allowed_tenants"]``, so a user sees and can start only their tenants; each profile
overrides the pod's labels and volume. The environment is :func:`server_environment` (callables
KubeSpawner evaluates per spawn, so a profile override never replaces it): ``WORKBENCH_TENANT``
is the chosen profile, ``WORKBENCH_API_TOKEN`` the user's current access token, kept by
:func:`pass_token` (the spawner's ``auth_state_hook``) — the same variables as
:class:`workbench.hub.spawner.TenantSpawner`.

Nothing here imports KubeSpawner, so the logic is tested without a cluster.
"""

from __future__ import annotations

from typing import Any

from workbench.tenancy.ids import validate_tenant_id

__all__ = ["pass_token", "server_environment", "tenant_profile", "tenant_profiles"]

#: where :func:`pass_token` keeps the token on the spawner
TOKEN_ATTRIBUTE = "workbench_access_token"


def tenant_profile(tenant: str, *, default: bool = False) -> dict[str, Any]:
    """The KubeSpawner profile of one tenant: labels and a volume per user and tenant."""
    validate_tenant_id(tenant, allow_system=True)
    claim = f"nb-{{username}}--{tenant}"
    return {
        "display_name": f"Tenant {tenant}",
        "slug": tenant,
        "description": f"JupyterLab with the Workbench · {tenant} kernel",
        "default": default,
        "kubespawner_override": {
            "extra_labels": {"workbench.io/tenant": tenant},
            "pvc_name_template": claim,
            "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim}}],
            "default_url": "/lab",
        },
    }


async def tenant_profiles(spawner: Any) -> list[dict[str, Any]]:
    """``profile_list`` for ``spawner``: one profile per allowed tenant, the login tenant the
    default; no profile (so no spawn) for a user without tenants."""
    state = await spawner.user.get_auth_state() or {}
    allowed = [str(t) for t in state.get("allowed_tenants") or []]
    home = str(state.get("tenant_id") or (allowed[0] if allowed else ""))
    return [tenant_profile(t, default=(t == home)) for t in allowed]


def server_environment(api_url: str, bot_service_url: str | None = None) -> dict[str, Any]:
    """``KubeSpawner.environment``: the Asset Repository, the Bot Service (``%promote``; left out
    when None), the chosen tenant and the token."""

    def tenant(spawner: Any) -> str:
        chosen = str((spawner.user_options or {}).get("profile") or "")
        return validate_tenant_id(chosen, allow_system=True)

    def token(spawner: Any) -> str:
        return str(getattr(spawner, TOKEN_ATTRIBUTE, ""))

    environment: dict[str, Any] = {
        "WORKBENCH_API_URL": api_url,
        "WORKBENCH_TENANT": tenant,
        "WORKBENCH_API_TOKEN": token,
    }
    if bot_service_url:
        environment["WORKBENCH_BOT_SERVICE_URL"] = bot_service_url
    return environment


def pass_token(spawner: Any, auth_state: dict[str, Any] | None) -> None:
    """``auth_state_hook``: keep the user's access token (refreshed before spawns by the
    authenticator) for the server; without one the spawn fails and asks for a new login."""
    token = (auth_state or {}).get("access_token")
    if not token:
        raise PermissionError(f"{spawner.user.name}: no access token in auth_state: log in again")
    setattr(spawner, TOKEN_ATTRIBUTE, str(token))
