"""User-management automation over the Identity service's management API (``/api``).

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
from urllib.parse import quote

import httpx

from workbench.errors import Forbidden, NotFound, WorkbenchError

__all__ = ["IdentityAdmin", "RoleSync", "disable_inactive_users", "last_activity", "sync_roles"]


class IdentityAdmin:
    """The management API of one tenant on the Identity service at ``url``."""

    def __init__(self, url: str, tenant_id: str, token: str, *, timeout: float = 30.0) -> None:
        self.tenant_id = tenant_id
        self._http = httpx.Client(
            base_url=f"{url.rstrip('/')}/api/tenants/{quote(tenant_id)}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    @classmethod
    def for_tenant(cls, tenant: Any, url: str | None = None) -> IdentityAdmin:
        """The API with the token the remote ``tenant`` client uses (a bot run's ``wb``)."""
        if url is None:
            from workbench.settings import Settings

            url = Settings().issuer_url()
        header = tenant._http.client.headers.get("Authorization", "")
        return cls(url, tenant.id, header.removeprefix("Bearer "))

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise WorkbenchError(
                f"cannot reach the Identity service at {self._http.base_url}: {exc}; check "
                "the identity_url parameter"
            ) from None
        if response.status_code == 403:
            raise Forbidden(
                f"the Identity service refused {method} {path}: {response.text[:200]}; the "
                "bot's client needs the role UserManagement (workbench.bot.roles)"
            )
        if response.status_code == 404:
            raise NotFound(f"{method} {path}: {response.text[:200]}")
        response.raise_for_status()
        return response.json()

    def users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/users")
        return result

    def newest_audit(self, actor: str) -> dict[str, Any] | None:
        entries = self._request("GET", "/audit", params={"actor": actor, "limit": 1})
        return entries[0] if entries else None

    def set_enabled(self, username: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PATCH", f"/users/{quote(username)}", json={"enabled": enabled}
        )
        return result

    def grant(self, username: str, role: str) -> None:
        self._request("PUT", f"/users/{quote(username)}/roles/{quote(role)}")

    def revoke(self, username: str, role: str) -> None:
        self._request("DELETE", f"/users/{quote(username)}/roles/{quote(role)}")

    def close(self) -> None:
        self._http.close()


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def last_activity(admin: IdentityAdmin, user: dict[str, Any]) -> datetime | None:
    """When ``user`` last did something the audit log recorded, else when it was created."""
    entry = admin.newest_audit(str(user["id"]))
    moments = [_parse(m) for m in (entry["at"] if entry else None, user.get("created")) if m]
    return max(moments) if moments else None


def disable_inactive_users(
    admin: IdentityAdmin,
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
    for user in admin.users():
        if not user.get("enabled", True) or user["username"] in (exempt or ()):
            continue
        seen = last_activity(admin, user)
        if seen is not None and seen >= cutoff:
            continue
        if not dry_run:
            admin.set_enabled(user["username"], False)
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
    admin: IdentityAdmin, members: dict[str, list[str]], *, dry_run: bool = False
) -> RoleSync:
    """Make the direct holders of each role in ``members`` exactly the usernames listed
    (roles not named are left alone; usernames that do not exist are reported, not created)."""
    users = {u["username"]: u for u in admin.users()}
    sync = RoleSync()
    for role, wanted in members.items():
        sync.unknown_users.extend(sorted(set(wanted) - set(users) - set(sync.unknown_users)))
        for username, user in sorted(users.items()):
            has = role in (user.get("roles") or [])
            if username in wanted and not has:
                sync.granted.setdefault(role, []).append(username)
                if not dry_run:
                    admin.grant(username, role)
            elif username not in wanted and has:
                sync.revoked.setdefault(role, []).append(username)
                if not dry_run:
                    admin.revoke(username, role)
    return sync
