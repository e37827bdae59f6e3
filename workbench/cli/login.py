"""``workbench login`` / ``logout``: a token for the Asset Repository, by device code (RFC 8628).

``workbench login`` asks the Identity service for a device code, prints the page to open and the
code to enter there (log in with your user and tenant, approve), waits for the approval and keeps
the tokens in ``$XDG_CONFIG_HOME/workbench/credentials.json`` (``~/.config/...``, mode 0600),
one entry per Asset Repository URL. Remote commands use the access token and refresh it (the
refresh token rotates) when it has expired. ``WORKBENCH_API_TOKEN``, when set, is used instead.
The CLI is the public OAuth client ``workbench-cli`` that ``workbench up`` registers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import httpx

from workbench.cli.common import emit, remote_url, state, wb_command
from workbench.errors import Unauthenticated

__all__ = ["CLI_CLIENT", "access_token", "credentials_path", "ensure_cli_client", "register"]

CLI_CLIENT = "workbench-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid workbench_api"
#: refresh this long before the access token expires
_EARLY = 30


def ensure_cli_client(directory: Any) -> None:
    """Register the CLI's public client (device code + refresh token) once."""
    if directory.get_client(CLI_CLIENT) is None:
        directory.create_client(
            "system",
            CLI_CLIENT,
            name="Workbench command line",
            public=True,
            grant_types=[DEVICE_GRANT, "refresh_token"],
            first_party=True,
            actor="workbench up",
        )


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "workbench" / "credentials.json"


def _load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(credentials_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, dict[str, Any]]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    partial.replace(path)


def _key(api_url: str) -> str:
    return api_url.rstrip("/")


def _identity_url(explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    from workbench.cli.platform import default_home, running_platform
    from workbench.settings import Settings

    found = running_platform(default_home(state().data_dir))
    if found is not None and found.identity_url:
        return found.identity_url.rstrip("/")
    settings = Settings()
    return (settings.identity_url or settings.issuer_url()).rstrip("/")


def _token_request(identity: str, data: dict[str, str]) -> httpx.Response:
    try:
        return httpx.post(f"{identity}/token", data=data, timeout=30)
    except httpx.TransportError as exc:
        raise Unauthenticated(
            f"cannot reach the Identity service at {identity}: {exc}; is the platform running "
            "(workbench up)?"
        ) from None


def _stored(body: dict[str, Any], identity: str) -> dict[str, Any]:
    return {
        "identityUrl": identity,
        "accessToken": body["access_token"],
        "refreshToken": body.get("refresh_token"),
        "expiresAt": time.time() + float(body.get("expires_in") or 300),
    }


def access_token(api_url: str) -> str | None:
    """The bearer token for ``api_url``: ``WORKBENCH_API_TOKEN``, else the stored login
    (refreshed when expired), else None."""
    env = os.environ.get("WORKBENCH_API_TOKEN")
    if env:
        return env
    data = _load()
    entry = data.get(_key(api_url))
    if entry is None:
        return None
    if float(entry.get("expiresAt", 0)) - _EARLY > time.time():
        return str(entry["accessToken"])
    if not entry.get("refreshToken"):
        raise Unauthenticated(f"the login for {api_url} has expired; run `workbench login`")
    identity = str(entry["identityUrl"])
    response = _token_request(
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
            f"({_oauth_error(response)}); run `workbench login`"
        )
    data[_key(api_url)] = _stored(response.json(), identity)
    _save(data)
    return str(data[_key(api_url)]["accessToken"])


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error_description") or body.get("error") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


@click.option("--identity-url", envvar="WORKBENCH_IDENTITY_URL", help="Identity service URL.")
@click.option("--tenant", "tenant_id", help="Tenant to log in to (preselected on the login page).")
@click.option(
    "--timeout", type=int, default=600, show_default=True, help="Seconds to wait for approval."
)
def login(identity_url: str | None, tenant_id: str | None, timeout: int) -> None:
    """Log in to the platform with a device code; the token is kept for later commands."""
    api = remote_url()
    if api is None:
        raise Unauthenticated(
            "no platform to log in to: start it (make run / workbench up) or pass --url"
        )
    identity = _identity_url(identity_url)
    try:
        started = httpx.post(
            f"{identity}/device_authorization",
            data={"client_id": CLI_CLIENT, "scope": SCOPE},
            timeout=30,
        )
    except httpx.TransportError as exc:
        raise Unauthenticated(f"cannot reach the Identity service at {identity}: {exc}") from None
    if started.status_code != 200:
        raise Unauthenticated(
            f"the Identity service at {identity} refused the device login "
            f"({_oauth_error(started)}); is the client {CLI_CLIENT} registered (workbench up)?"
        )
    grant = started.json()
    page = str(grant.get("verification_uri_complete") or grant["verification_uri"])
    if tenant_id:
        page += ("&" if "?" in page else "?") + f"tenant={tenant_id}"
    click.echo(f"Open {page} and enter the code {grant['user_code']} to log in to {api}", err=True)
    interval = float(grant.get("interval") or 5)
    deadline = time.monotonic() + min(timeout, int(grant.get("expires_in") or timeout))
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = _token_request(
            identity,
            {
                "grant_type": DEVICE_GRANT,
                "device_code": grant["device_code"],
                "client_id": CLI_CLIENT,
            },
        )
        if response.status_code == 200:
            data = _load()
            data[_key(api)] = _stored(response.json(), identity)
            _save(data)
            emit(
                {"url": api, "credentials": str(credentials_path())},
                lambda c: c.print(f"logged in to {api}"),
            )
            return
        error = response.json().get("error") if response.content else None
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise Unauthenticated(f"the login was not approved ({_oauth_error(response)})")
    raise Unauthenticated(f"the code was not approved within {timeout} s; run `workbench login`")


def logout() -> None:
    """Forget the stored login for the platform (--url or the running one)."""
    api = remote_url()
    data = _load()
    removed = api is not None and data.pop(_key(api), None) is not None
    if removed:
        _save(data)
    emit({"url": api, "loggedOut": removed}, lambda c: c.print(f"logged out of {api}"))


def register(cli: click.Group) -> None:
    wb_command(cli, "login")(login)
    wb_command(cli, "logout")(logout)
