"""The CLI's stored logins: one token set per Asset Repository URL, and :func:`access_token`.

``workbench login`` (:mod:`workbench.cli.login`) stores the tokens in
``$XDG_CONFIG_HOME/workbench/credentials.json`` (``~/.config/...``, mode 0600); remote commands
read them here and refresh the access token (the refresh token rotates) when it has expired.
``WORKBENCH_API_TOKEN``, when set, is used instead.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from workbench.errors import Unauthenticated
from workbench.settings import current_settings

__all__ = [
    "CLI_CLIENT",
    "access_token",
    "credentials_key",
    "credentials_path",
    "load_credentials",
    "oauth_error",
    "save_credentials",
    "stored_login",
    "token_request",
]

#: the public OAuth client of the CLI, registered by ``workbench up``
CLI_CLIENT = "workbench-cli"
#: refresh this long before the access token expires
_EARLY = 30


def credentials_path() -> Path:
    # XDG_CONFIG_HOME is the desktop's convention, not a workbench setting
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "workbench" / "credentials.json"


def load_credentials() -> dict[str, dict[str, Any]]:
    """The stored logins by :func:`credentials_key` (empty when there is no readable file)."""
    try:
        data = json.loads(credentials_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_credentials(data: dict[str, dict[str, Any]]) -> None:
    """Replace the stored logins (written to a side file, then renamed; mode 0600)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    partial.replace(path)


def credentials_key(api_url: str) -> str:
    return api_url.rstrip("/")


def token_request(identity: str, data: dict[str, str]) -> httpx.Response:
    """POST ``data`` to the Identity service's token endpoint."""
    try:
        return httpx.post(f"{identity}/token", data=data, timeout=30)
    except httpx.TransportError as exc:
        raise Unauthenticated(
            f"cannot reach the Identity service at {identity}: {exc}; is the platform running "
            "(workbench up)?"
        ) from None


def stored_login(body: dict[str, Any], identity: str) -> dict[str, Any]:
    """The stored form of a token response of ``identity``."""
    return {
        "identityUrl": identity,
        "accessToken": body["access_token"],
        "refreshToken": body.get("refresh_token"),
        "expiresAt": time.time() + float(body.get("expires_in") or 300),
    }


def access_token(api_url: str) -> str | None:
    """The bearer token for ``api_url``: the ``api_token`` setting (``WORKBENCH_API_TOKEN``),
    else the stored login (refreshed when expired), else None."""
    static = current_settings().api_token
    if static is not None and static.get_secret_value():
        return static.get_secret_value()
    data = load_credentials()
    entry = data.get(credentials_key(api_url))
    if entry is None:
        return None
    if float(entry.get("expiresAt", 0)) - _EARLY > time.time():
        return str(entry["accessToken"])
    if not entry.get("refreshToken"):
        raise Unauthenticated(f"the login for {api_url} has expired; run `workbench login`")
    identity = str(entry["identityUrl"])
    response = token_request(
        identity,
        {
            "grant_type": "refresh_token",
            "refresh_token": str(entry["refreshToken"]),
            "client_id": CLI_CLIENT,
        },
    )
    if response.status_code != 200:
        raise Unauthenticated(
            f"the login for {api_url} has expired and could not be renewed "
            f"({oauth_error(response)}); run `workbench login`"
        )
    data[credentials_key(api_url)] = stored_login(response.json(), identity)
    save_credentials(data)
    return str(data[credentials_key(api_url)]["accessToken"])


def oauth_error(response: httpx.Response) -> str:
    """The OAuth error a response of the Identity service carries, for a message."""
    try:
        body = response.json()
        return str(body.get("error_description") or body.get("error") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"
