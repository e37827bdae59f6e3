"""What the hub needs in the data directory before it starts (no JupyterHub import here).

- the hub's OAuth client at the Identity service (``jupyterhub`` in the system tenant:
  confidential, authorization code + refresh token, first-party, one exact redirect URI), its
  secret kept in ``<home>/secrets/hub-client-secret`` (mode 0600);
- the key that encrypts ``auth_state`` (``<home>/secrets/hub-crypt-key``), generated on first use;
- the hub's own state directory ``<home>/hub`` (database, cookie secret, working directories).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from workbench.secret_files import read_or_create_secret, read_secret, write_secret

__all__ = [
    "HUB_CLIENT_ID",
    "PROJECT_PROXY",
    "crypt_key",
    "hub_client_secret",
    "hub_state_dir",
    "proxy_command",
    "register_hub_client",
]

HUB_CLIENT_ID = "jupyterhub"

#: where ``make hub-proxy`` installs configurable-http-proxy (npm, pinned in .hub/package.json)
PROJECT_PROXY = (
    Path(__file__).resolve().parents[2]
    / ".hub"
    / "node_modules"
    / ".bin"
    / "configurable-http-proxy"
)


def proxy_command() -> str | None:
    """configurable-http-proxy: the project's copy, else one on PATH, else None."""
    import shutil

    if PROJECT_PROXY.exists():
        return str(PROJECT_PROXY)
    return shutil.which("configurable-http-proxy")


def crypt_key(home: Path) -> str:
    """The hex key (32 bytes) encrypting the hub's ``auth_state``; created once."""
    return read_or_create_secret(home / "secrets" / "hub-crypt-key", lambda: secrets.token_hex(32))


def hub_client_secret(home: Path) -> str | None:
    """The hub client's secret, if the client was registered from this data directory."""
    return read_secret(home / "secrets" / "hub-client-secret")


def hub_state_dir(home: Path) -> Path:
    path = home / "hub"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def register_hub_client(
    directory: Any, home: Path, hub_url: str, *, client_id: str = HUB_CLIENT_ID
) -> str:
    """Register the hub's OAuth client once (``directory``: the Identity
    :class:`~workbench.identity.directory.Directory`) and return its secret.

    The redirect URI is ``<hub_url>/hub/oauth_callback``. A client registered earlier with
    another redirect URI (the hub moved) gets a :class:`~workbench.errors.Conflict` naming the
    fix.
    """
    from workbench.errors import Conflict

    redirect = f"{hub_url.rstrip('/')}/hub/oauth_callback"
    existing = directory.get_client(client_id)
    secret = hub_client_secret(home)
    if existing is not None and secret is not None:
        if redirect not in existing.redirect_uris:
            raise Conflict(
                f"the hub client {client_id!r} is registered for {existing.redirect_uris}, not "
                f"{redirect}; start the hub on its former address or register a new client "
                "(workbench clients add ... --redirect-uri ...) and set WORKBENCH_HUB_CLIENT_ID"
            )
        return secret
    if existing is not None:
        # registered, but its secret is not here (another data directory's copy): new secret
        secret = directory.rotate_client_secret(client_id, actor="workbench-up")
    else:
        _, secret = directory.create_client(
            "system",
            client_id,
            name="Mesh Workbench notebooks (JupyterHub)",
            redirect_uris=[redirect],
            post_logout_redirect_uris=[f"{hub_url.rstrip('/')}/hub/"],
            grant_types=["authorization_code", "refresh_token"],
            first_party=True,
            actor="workbench-up",
        )
    assert secret is not None  # a confidential client always has one
    write_secret(home / "secrets" / "hub-client-secret", secret)
    return str(secret)
