"""Who can log in to the demo platform that ``workbench up`` runs.

On every start: the platform admin exists in the system tenant (password printed once when it is
generated, or ``WORKBENCH_ADMIN_PASSWORD``); the demo tenant has a ``demo`` user in its
TenantOwners group whose password is random, kept in ``<data>/secrets/demo-password`` (mode 0600)
and printed at each start (an explicit demo mode: nothing here is a default password); and the
playground is registered as a public OAuth client (authorization code + PKCE) whose redirect URI
follows the Asset Repository's current address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from workbench.secret_files import read_or_create_secret

__all__ = ["PLAYGROUND_CLIENT", "DemoAccess", "prepare_demo_access"]

PLAYGROUND_CLIENT = "workbench-playground"


@dataclass
class DemoAccess:
    admin_password: str | None
    demo_user: str | None
    demo_password: str | None


def prepare_demo_access(
    workbench: Any, *, playground_redirect: str, demo_tenant: str | None
) -> DemoAccess:
    """Make sure the admin, the demo user and the playground client exist (idempotent)."""
    from workbench.errors import NotFound
    from workbench.identity.directory import Directory
    from workbench.identity.model import TENANT_OWNERS

    directory = Directory.for_workbench(workbench)
    admin_password = directory.bootstrap(os.environ.get("WORKBENCH_ADMIN_PASSWORD"))
    client = directory.get_client(PLAYGROUND_CLIENT)
    if client is None:
        directory.create_client(
            "system",
            PLAYGROUND_CLIENT,
            name="GraphQL playground",
            public=True,
            redirect_uris=[playground_redirect],
            post_logout_redirect_uris=[playground_redirect],
            first_party=True,
        )
    elif client.redirect_uris != [playground_redirect]:
        directory.set_redirect_uris(PLAYGROUND_CLIENT, [playground_redirect])
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
