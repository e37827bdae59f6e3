"""Who can log in to the demo platform that ``workbench up`` runs.

On every start: the platform admin exists in the system tenant (password printed once when it is
generated, or the ``admin_password`` setting, ``WORKBENCH_ADMIN_PASSWORD``); the demo tenant
has a ``demo`` user in its TenantOwners group whose password is random, kept in
``<data>/secrets/demo-password`` (mode 0600) and printed at each start (an explicit demo mode:
nothing here is a default password); and the playground and the Admin Panel are registered as
public first-party OAuth clients of the system tenant (authorization code + PKCE) whose
redirect URIs follow the services' current addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.secret_files import read_or_create_secret
from workbench.settings import current_settings

__all__ = [
    "ADMIN_CLIENT",
    "PLAYGROUND_CLIENT",
    "DemoAccess",
    "ensure_first_party_client",
    "prepare_demo_access",
]

PLAYGROUND_CLIENT = "workbench-playground"
ADMIN_CLIENT = "workbench-admin"


@dataclass
class DemoAccess:
    admin_password: str | None
    demo_user: str | None
    demo_password: str | None


def ensure_first_party_client(
    directory: Any, client_id: str, *, name: str, redirect: str, logout_redirect: str | None = None
) -> None:
    """Register ``client_id`` as a public first-party client of the system tenant (PKCE), or
    point its redirect URI at ``redirect`` when the service moved (idempotent)."""
    client = directory.get_client(client_id)
    if client is None:
        directory.create_client(
            "system",
            client_id,
            name=name,
            public=True,
            redirect_uris=[redirect],
            post_logout_redirect_uris=[logout_redirect or redirect],
            first_party=True,
        )
    elif client.redirect_uris != [redirect]:
        directory.set_redirect_uris(client_id, [redirect])


def prepare_demo_access(
    workbench: Any,
    *,
    playground_redirect: str,
    demo_tenant: str | None,
    admin_url: str | None = None,
) -> DemoAccess:
    """Make sure the admin, the demo user, the playground client and (with ``admin_url``) the
    Admin Panel's client exist (idempotent)."""
    from workbench.errors import NotFound
    from workbench.identity.directory import Directory
    from workbench.identity.model import TENANT_OWNERS

    directory = Directory.for_workbench(workbench)
    configured = current_settings().admin_password  # WORKBENCH_ADMIN_PASSWORD
    admin_password = directory.bootstrap(configured.get_secret_value() if configured else None)
    ensure_first_party_client(
        directory, PLAYGROUND_CLIENT, name="GraphQL playground", redirect=playground_redirect
    )
    if admin_url is not None:
        ensure_first_party_client(
            directory,
            ADMIN_CLIENT,
            name="Admin Panel",
            redirect=f"{admin_url.rstrip('/')}/login",
            logout_redirect=f"{admin_url.rstrip('/')}/",
        )
    if demo_tenant is None or not workbench.registry.exists(demo_tenant):
        return DemoAccess(admin_password, None, None)
    password = read_or_create_secret(workbench.home / "secrets" / "demo-password")
    directory.ensure_builtin_groups(demo_tenant)
    try:
        directory.get_user(demo_tenant, "demo")
    except NotFound:
        directory.create_user(
            demo_tenant,
            "demo",
            password=password,
            name="Demo user",
            groups=[TENANT_OWNERS],
            actor="workbench up",
        )
    return DemoAccess(admin_password, "demo", password)
