"""``workbench login`` / ``logout``: a token for the Asset Repository, by device code (RFC 8628).

``workbench login`` asks the Identity service for a device code, prints the page to open and the
code to enter there (log in with your user and tenant, approve), waits for the approval and keeps
the tokens, one entry per Asset Repository URL, where remote commands find them
(:mod:`workbench.cli.credentials`, which also has :func:`access_token`). The CLI is the public
OAuth client ``workbench-cli`` that ``workbench up`` registers.
"""

from __future__ import annotations

import time
from typing import Any

import click
import httpx

from workbench.cli.common import emit, remote_url, state, wb_command
from workbench.cli.credentials import (
    CLI_CLIENT,
    access_token,
    credentials_key,
    credentials_path,
    load_credentials,
    oauth_error,
    save_credentials,
    stored_login,
    token_request,
)
from workbench.errors import Unauthenticated

__all__ = ["CLI_CLIENT", "access_token", "credentials_path", "ensure_cli_client", "register"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid workbench_api"


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
            f"({oauth_error(started)}); is the client {CLI_CLIENT} registered (workbench up)?"
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
        response = token_request(
            identity,
            {
                "grant_type": DEVICE_GRANT,
                "device_code": grant["device_code"],
                "client_id": CLI_CLIENT,
            },
        )
        if response.status_code == 200:
            data = load_credentials()
            data[credentials_key(api)] = stored_login(response.json(), identity)
            save_credentials(data)
            emit(
                {"url": api, "credentials": str(credentials_path())},
                lambda c: c.print(f"logged in to {api}"),
            )
            return
        error = response.json().get("error") if response.content else None
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise Unauthenticated(f"the login was not approved ({oauth_error(response)})")
    raise Unauthenticated(f"the code was not approved within {timeout} s; run `workbench login`")


def logout() -> None:
    """Forget the stored login for the platform (--url or the running one)."""
    api = remote_url()
    data = load_credentials()
    removed = api is not None and data.pop(credentials_key(api), None) is not None
    if removed:
        save_credentials(data)
    emit({"url": api, "loggedOut": removed}, lambda c: c.print(f"logged out of {api}"))


def register(cli: click.Group) -> None:
    wb_command(cli, "login")(login)
    wb_command(cli, "logout")(logout)
