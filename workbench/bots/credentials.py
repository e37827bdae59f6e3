"""The token a bot's runs use: a client-credentials token of an OAuth client of its own.

Each promoted bot gets a confidential client ``bot.<tenant>.<name>`` in its tenant (roles the
bot needs to write entities and stream data, nothing beyond the tenant), registered in the
Identity directory the first time the bot runs; its secret is kept in the data directory
(``secrets/bots/<tenant>/<name>``, mode 0600). Before each run the Bot Service asks the Identity
service's token endpoint for a fresh access token, exactly as any client would; the kernel gets
that token and the Asset Repository URL, never the service's own credentials or the author's.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import httpx

from workbench.errors import BackendUnavailable, Unauthenticated

__all__ = ["BOT_ROLES", "BotCredentials", "bot_client_id"]

log = logging.getLogger("workbench.bots.credentials")

#: what a bot may do in its tenant: read and write entities (Development), write stream data
BOT_ROLES = ("Development", "StreamDataWriter")


def bot_client_id(tenant_id: str, name: str, roles: tuple[str, ...] = ()) -> str:
    """``bot.<tenant>.<name>``; a bot with extra roles gets a client of its own per role set
    (``bot.<tenant>.<name>.r-<hash>``), so a new version asking for other roles never inherits
    the old client's."""
    base = f"bot.{tenant_id}.{name}"
    if not roles:
        return base
    digest = hashlib.sha256(",".join(sorted(set(roles))).encode()).hexdigest()[:8]
    return f"{base}.r-{digest}"


class BotCredentials:
    """Tokens for bots: ``environment(tenant, bot)`` gives the kernel's API variables."""

    def __init__(self, workbench: Any, *, api_url: str, token_url: str) -> None:
        self.workbench = workbench
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url

    def _secret_file(self, tenant_id: str, client_id: str) -> Path:
        return Path(self.workbench.home) / "secrets" / "bots" / tenant_id / client_id

    def _client_secret(self, tenant_id: str, name: str, roles: tuple[str, ...]) -> tuple[str, str]:
        from workbench.identity.tenant_clients import tenant_client_secret

        client_id = bot_client_id(tenant_id, name, roles)
        secret = tenant_client_secret(
            self.workbench,
            tenant_id,
            client_id,
            name=f"Bot {name} of {tenant_id}",
            roles={*BOT_ROLES, *roles},
            secret_file=self._secret_file(tenant_id, client_id),
            actor="bot-service",
        )
        return client_id, secret

    def token(self, tenant_id: str, name: str, roles: tuple[str, ...] = ()) -> str:
        """A fresh access token of the bot's client (from the Identity token endpoint)."""
        client_id, secret = self._client_secret(tenant_id, name, roles)
        try:
            response = httpx.post(
                self.token_url,
                data={"grant_type": "client_credentials", "scope": "workbench_api"},
                auth=(client_id, secret),
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"the Identity service at {self.token_url} is not reachable for the token of "
                f"bot {name!r}: {exc}"
            ) from None
        if response.status_code != 200:
            raise Unauthenticated(
                f"the Identity service refused the token of bot {name!r} ({client_id}): "
                f"{response.status_code} {response.text[:200]}"
            )
        return str(response.json()["access_token"])

    def environment(self, tenant_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
        return {
            "WORKBENCH_API_URL": self.api_url,
            "WORKBENCH_API_TOKEN": self.token(tenant_id, name, roles),
        }


class InProcessCredentials:
    """Kernels that open the data directory themselves (no Identity: a developer machine)."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def environment(self, tenant_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
        return {"WORKBENCH_HOME": str(self.home)}


class StaticTokenCredentials:
    """Development mode (``--dev-static-token``): the platform's static token, not bot-scoped."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url
        self._token = token

    def environment(self, tenant_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
        return {"WORKBENCH_API_URL": self.api_url, "WORKBENCH_API_TOKEN": self._token}
