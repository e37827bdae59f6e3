"""Tenant vhosts and users on RabbitMQ through its management HTTP API (AMQP cannot create them).

Each tenant gets the vhost ``wb-<tenant>`` and a user ``wb-<tenant>`` whose permissions cover
that vhost only, so an adapter holding a tenant's credentials cannot open another tenant's vhost.
The administrator named in the management URL also gets permissions on every tenant vhost (the
platform services connect with it)::

    admin = RabbitMqAdmin("http://admin:secret@127.0.0.1:15672")
    creds = admin.ensure_tenant("acme")            # TenantCredentials(vhost, username, password)
    url = creds.amqp_url("127.0.0.1", 5672)        # amqp://wb-acme:...@127.0.0.1:5672/wb-acme
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from workbench.errors import BackendUnavailable, NotFound, ValidationError
from workbench.messaging.bus_urls import redact_url, tenant_vhost
from workbench.settings import Settings
from workbench.tenancy.ids import validate_tenant_id

__all__ = ["RabbitMqAdmin", "TenantCredentials"]


@dataclass(frozen=True)
class TenantCredentials:
    """What a tenant's processes use to reach its vhost."""

    tenant: str
    vhost: str
    username: str
    password: str

    def amqp_url(self, host: str, port: int = 5672, *, scheme: str = "amqp") -> str:
        """``amqp://USER:PASS@HOST:PORT/VHOST`` (user, password and vhost URL-quoted)."""
        user, password = quote(self.username, safe=""), quote(self.password, safe="")
        return f"{scheme}://{user}:{password}@{host}:{port}/{quote(self.vhost, safe='')}"


class RabbitMqAdmin:
    """A client of the management API at ``management_url`` (``http://USER:PASS@HOST:PORT``)."""

    def __init__(self, management_url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(management_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                f"RabbitMQ management URL {redact_url(management_url)!r} is not an http(s) URL: "
                "use http://USER:PASS@HOST:15672 (WORKBENCH_RABBITMQ_MANAGEMENT_URL)"
            )
        if parts.username is None or parts.password is None:
            raise ValidationError(
                f"RabbitMQ management URL {redact_url(management_url)!r} carries no credentials: "
                "use http://USER:PASS@HOST:15672 with an administrator"
            )
        self.username = parts.username
        base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
        self._shown = redact_url(management_url)
        self._http = httpx.Client(
            base_url=f"{base}/api", auth=(parts.username, parts.password), timeout=timeout
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RabbitMqAdmin:
        """The admin client of ``WORKBENCH_RABBITMQ_MANAGEMENT_URL``."""
        url = settings.rabbitmq_management_url.strip()
        if not url:
            raise ValidationError(
                "no RabbitMQ management API configured: set WORKBENCH_RABBITMQ_MANAGEMENT_URL "
                "to http://USER:PASS@HOST:15672 (an administrator) to create tenant vhosts"
            )
        return cls(url)

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"RabbitMQ management API at {self._shown} is unreachable ({exc}); is the "
                "management plugin enabled (rabbitmq-plugins enable rabbitmq_management)?"
            ) from exc
        if response.status_code in (401, 403):
            raise BackendUnavailable(
                f"RabbitMQ management API at {self._shown} refused user {self.username!r} "
                f"({response.status_code}); it needs the 'administrator' tag"
            )
        if response.status_code == 404 and method != "DELETE":
            raise NotFound(f"RabbitMQ has no {path.split('/')[1]} {path!r}")
        if response.status_code >= 400 and response.status_code != 404:
            raise BackendUnavailable(
                f"RabbitMQ management API {method} {path} failed with {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    def ensure_vhost(self, vhost: str) -> None:
        """Create ``vhost`` if missing and give the administrator full permissions on it."""
        name = quote(vhost, safe="")
        self._request("PUT", f"/vhosts/{name}", {"description": "Mesh Workbench tenant"})
        self._grant(vhost, self.username)

    def _grant(self, vhost: str, username: str) -> None:
        self._request(
            "PUT",
            f"/permissions/{quote(vhost, safe='')}/{quote(username, safe='')}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )

    def ensure_tenant(self, tenant: str, *, password: str | None = None) -> TenantCredentials:
        """Create (or update) the tenant's vhost and its user limited to it.

        ``password``: the user's password (default: a new random one, which replaces any
        previous password of the user)."""
        validate_tenant_id(tenant, allow_system=True)
        vhost = tenant_vhost(tenant)
        username = f"wb-{tenant}"
        secret = password or secrets.token_urlsafe(24)
        self.ensure_vhost(vhost)
        self._request("PUT", f"/users/{quote(username, safe='')}", {"password": secret, "tags": ""})
        self._grant(vhost, username)
        return TenantCredentials(tenant, vhost, username, secret)

    def delete_tenant(self, tenant: str) -> None:
        """Delete the tenant's vhost (with every queue and message in it) and its user."""
        validate_tenant_id(tenant, allow_system=True)
        self._request("DELETE", f"/vhosts/{quote(tenant_vhost(tenant), safe='')}")
        self._request("DELETE", f"/users/{quote(f'wb-{tenant}', safe='')}")

    def vhosts(self) -> list[str]:
        """Names of every vhost."""
        return [v["name"] for v in self._request("GET", "/vhosts").json()]

    def user_permissions(self, username: str) -> dict[str, dict[str, str]]:
        """vhost → {configure, write, read} regular expressions of ``username``."""
        rows = self._request("GET", f"/users/{quote(username, safe='')}/permissions").json()
        return {r["vhost"]: {k: r[k] for k in ("configure", "write", "read")} for r in rows}

    def close_connections(self, vhost: str, reason: str = "closed by the platform") -> int:
        """Force-close every client connection to ``vhost``; how many were closed."""
        rows = self._request("GET", f"/vhosts/{quote(vhost, safe='')}/connections").json()
        for row in rows:
            self._http.request(
                "DELETE",
                f"/connections/{quote(row['name'], safe='')}",
                headers={"X-Reason": reason},
            )
        return len(rows)

    def close(self) -> None:
        self._http.close()
