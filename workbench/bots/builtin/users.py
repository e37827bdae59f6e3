"""User-management automation over the Identity service's management API (``/api``, through
the Admin Panel's client :class:`~workbench.admin.api.AdminApi`).

:func:`disable_inactive_users` disables the users whose last activity — the newest entry of
the tenant's audit log made by them (a login, a change), or their creation — is older than
``days``. :func:`sync_roles` makes the members of each managed role exactly the usernames
given (grants and revokes through the API, so each change is audited).

The bot's token needs the role UserManagement: the notebook asks for it in its metadata
(``workbench.bot.roles``), so only an author holding UserManagement can promote it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.admin.api import AdminApi

__all__ = ["RoleSync", "disable_inactive_users", "identity_api", "last_activity", "sync_roles"]


def identity_api(tenant: Any, url: str | None = None) -> AdminApi:
    """The Identity management API (the Admin Panel's client) with the token the remote
    ``tenant`` client uses — in a bot run, the bot's own; ``url`` defaults to the issuer."""
    if url is None:
        from workbench.settings import Settings

        url = Settings().issuer_url()
    if hasattr(tenant, "_http"):
        token = str(tenant._http.client.headers.get("Authorization", "")).removeprefix("Bearer ")
    else:  # an in-process tenant: the platform's token from the environment, if any
        from workbench.settings import Settings

        secret = Settings().api_token
        token = secret.get_secret_value() if secret is not None else ""
    return AdminApi(identity_url=url, api_url=getattr(tenant, "url", ""), token=token or None)


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def last_activity(api: AdminApi, user: dict[str, Any]) -> datetime | None:
    """When ``user`` last did something the audit log recorded, else when it was created."""
    entries = api.audit(str(user["tenantId"]), actor=str(user["id"]), limit=1)
    newest = entries[0]["at"] if entries else None
    moments = [_parse(m) for m in (newest, user.get("created")) if m]
    return max(moments) if moments else None


def disable_inactive_users(
    api: AdminApi,
    tenant_id: str,
    days: float,
    *,
    exempt: list[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Disable the enabled users (not in ``exempt``) inactive for more than ``days``; returns
    ``[{"username", "lastActivity"}]`` of those disabled (or that would be, with dry_run)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    disabled = []
    for user in api.users(tenant_id):
        if not user.get("enabled", True) or user["username"] in (exempt or ()):
            continue
        seen = last_activity(api, user)
        if seen is not None and seen >= cutoff:
            continue
        if not dry_run:
            api.set_user_enabled(tenant_id, user["username"], False)
        disabled.append(
            {"username": user["username"], "lastActivity": seen.isoformat() if seen else None}
        )
    return disabled


@dataclass
class RoleSync:
    granted: dict[str, list[str]] = field(default_factory=dict)
    revoked: dict[str, list[str]] = field(default_factory=dict)
    unknown_users: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_roles(
    api: AdminApi, tenant_id: str, members: dict[str, list[str]], *, dry_run: bool = False
) -> RoleSync:
    """Make the direct holders of each role in ``members`` exactly the usernames listed
    (roles not named are left alone; usernames that do not exist are reported, not created)."""
    users = {u["username"]: u for u in api.users(tenant_id)} if members else {}
    sync = RoleSync()
    for role, wanted in members.items():
        sync.unknown_users.extend(sorted(set(wanted) - set(users) - set(sync.unknown_users)))
        for username, user in sorted(users.items()):
            has = role in (user.get("roles") or [])
            if username in wanted and not has:
                sync.granted.setdefault(role, []).append(username)
                if not dry_run:
                    api.grant_role(tenant_id, username, role)
            elif username not in wanted and has:
                sync.revoked.setdefault(role, []).append(username)
                if not dry_run:
                    api.revoke_role(tenant_id, username, role)
    return sync
