"""``workbench users|roles|clients|token|audit``: the identity directory from the command line.

Commands work on the data directory directly (like ``workbench tenant``); every change is
written to the tenant's audit log with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_wb, wb_command

__all__ = ["audit", "clients", "register", "roles", "token", "users"]


def _directory() -> Any:
    from workbench.identity.directory import Directory

    return Directory.for_workbench(open_wb())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Callable[[Console], None]:
    """What ``emit`` prints without ``--json``: a table of ``rows`` under ``columns``."""

    def human(console: Console) -> None:
        table = Table(*columns)
        for row in rows:
            table.add_row(*row)
        console.print(table)

    return human


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _joined(items: Iterable[str]) -> str:
    return ", ".join(items)


tenant_option = click.option(
    "--tenant", "tenant_id", default="system", show_default=True, help="The user's tenant."
)


@click.group()
def users() -> None:
    """Add, list, disable users and set passwords."""


@wb_command(users, "add")
@click.argument("username")
@tenant_option
@click.option("--email")
@click.option("--name")
@click.option("--role", "roles", multiple=True, help="A role to grant (repeatable).")
@click.option("--group", "groups", multiple=True, help="A group to join, e.g. TenantOwners.")
@click.option("--password", help="The password (default: asked for, hidden).")
@click.option("--generate-password", is_flag=True, help="Generate one and print it once.")
@click.option("--no-password", is_flag=True, help="An upstream-only user (LDAP/OIDC).")
def users_add(
    username: str,
    tenant_id: str,
    email: str | None,
    name: str | None,
    roles: tuple[str, ...],
    groups: tuple[str, ...],
    password: str | None,
    generate_password: bool,
    no_password: bool,
) -> None:
    """Add user USERNAME to a tenant."""
    from workbench.identity.passwords import generate_secret

    generated = None
    if no_password:
        password = None
    elif generate_password:
        password = generated = generate_secret(15)
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    directory = _directory()
    user = directory.create_user(
        tenant_id,
        username,
        password=password,
        email=email,
        name=name,
        roles=roles,
        groups=groups,
        actor=_actor(),
    )
    data = user.public() | ({"generatedPassword": generated} if generated else {})

    def human(console: Console) -> None:
        console.print(f"added user [bold]{username}[/] to tenant [bold]{tenant_id}[/]")
        if generated:
            console.print(f"password (shown once): [bold]{generated}[/]")

    emit(data, human)


@wb_command(users, "list")
@tenant_option
def users_list(tenant_id: str) -> None:
    """List a tenant's users with their effective roles."""
    directory = _directory()
    found = directory.list_users(tenant_id)
    rows = [u.public() | {"effectiveRoles": directory.effective_roles(u)} for u in found]

    columns = ("username", "enabled", "source", "groups", "roles")
    emit(rows, _table(columns, [_user_row(row) for row in rows]))


def _user_row(user: dict[str, Any]) -> tuple[str, ...]:
    groups, roles = _joined(user["groups"]), _joined(user["effectiveRoles"])
    return (user["username"], _yes(user["enabled"]), user["source"], groups, roles)


@wb_command(users, "disable")
@click.argument("username")
@tenant_option
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
def users_disable(username: str, tenant_id: str, enable: bool) -> None:
    """Disable USERNAME: no more logins, and its refresh tokens stop working."""
    user = _directory().update_user(tenant_id, username, enabled=enable, actor=_actor())
    state = "enabled" if user.enabled else "disabled"
    emit(user.public(), lambda c: c.print(f"{state} user [bold]{username}[/]"))


@wb_command(users, "passwd")
@click.argument("username")
@tenant_option
@click.option("--password", help="The new password (default: asked for, hidden).")
def users_passwd(username: str, tenant_id: str, password: str | None) -> None:
    """Set USERNAME's password."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    user = _directory().set_password(tenant_id, username, password, actor=_actor())
    emit(user.public(), lambda c: c.print(f"password of [bold]{username}[/] changed"))


@click.group()
def roles() -> None:
    """Grant and revoke roles."""


def _role_target(func: Callable[..., None]) -> Callable[..., None]:
    """The ``ROLE --user USERNAME [--tenant]`` of ``roles grant|revoke``."""
    for option in (tenant_option, click.option("--user", "username", required=True)):
        func = option(func)
    return click.argument("role")(func)


def _set_role(role: str, username: str, tenant_id: str, granted: bool) -> None:
    user = _directory().set_role(tenant_id, username, role, granted, actor=_actor())
    done = f"granted {role} to" if granted else f"revoked {role} from"
    emit(user.public(), lambda c: c.print(f"{done} [bold]{username}[/]"))


@wb_command(roles, "grant")
@_role_target
def roles_grant(role: str, username: str, tenant_id: str) -> None:
    """Grant ROLE to a user."""
    _set_role(role, username, tenant_id, granted=True)


@wb_command(roles, "revoke")
@_role_target
def roles_revoke(role: str, username: str, tenant_id: str) -> None:
    """Revoke ROLE from a user (roles from groups stay)."""
    _set_role(role, username, tenant_id, granted=False)


@wb_command(roles, "list")
def roles_list() -> None:
    """The platform's roles."""
    from workbench.identity.model import ROLES

    emit(list(ROLES), lambda c: c.print("\n".join(ROLES)))


@click.group()
def clients() -> None:
    """Register OAuth clients, list them, rotate their secrets."""


@wb_command(clients, "add")
@click.argument("client_id")
@tenant_option
@click.option("--name")
@click.option("--public", is_flag=True, help="No secret (browser apps, CLI, notebooks): PKCE.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI.")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    help="authorization_code, refresh_token, client_credentials, "
    "urn:ietf:params:oauth:grant-type:device_code (default by client kind).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Allowed scope (default: workbench_api.read_only for a client-credentials client, "
    "else all).",
)
@click.option("--role", "roles_", multiple=True, help="Role of client-credentials tokens.")
@click.option("--first-party", is_flag=True, help="Skip the consent page.")
def clients_add(
    client_id: str,
    tenant_id: str,
    name: str | None,
    public: bool,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    scopes: tuple[str, ...],
    roles_: tuple[str, ...],
    first_party: bool,
) -> None:
    """Register CLIENT_ID; a confidential client's secret is printed once."""
    client, secret = _directory().create_client(
        tenant_id,
        client_id,
        name=name,
        public=public,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=grant_types or None,
        scopes=scopes or None,
        roles=roles_,
        first_party=first_party,
        actor=_actor(),
    )

    def human(console: Console) -> None:
        console.print(f"registered client [bold]{client_id}[/] in tenant {tenant_id}")
        if secret:
            console.print(f"client secret (shown once): [bold]{secret}[/]")

    emit(client.info() | {"clientSecret": secret}, human)


@wb_command(clients, "list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's clients.")
def clients_list(tenant_id: str | None) -> None:
    """List clients."""
    found = [c.info() for c in _directory().list_clients(tenant_id)]

    columns = ("client", "tenant", "public", "grants", "redirect URIs")
    emit(found, _table(columns, [_client_row(client) for client in found]))


def _client_row(client: dict[str, Any]) -> tuple[str, ...]:
    grants, uris = _joined(client["grantTypes"]), "\n".join(client["redirectUris"])
    return (client["clientId"], client["tenantId"], _yes(client["public"]), grants, uris)


@wb_command(clients, "rotate-secret")
@click.argument("client_id")
def clients_rotate(client_id: str) -> None:
    """Give CLIENT_ID a new secret (printed once; the old one stops working)."""
    secret = _directory().rotate_client_secret(client_id, actor=_actor())
    emit(
        {"clientId": client_id, "clientSecret": secret},
        lambda c: c.print(f"new secret of [bold]{client_id}[/] (shown once): [bold]{secret}[/]"),
    )


@click.option("--client", "client_id", required=True, help="A client allowed client_credentials.")
@click.option(
    "--secret",
    envvar="WORKBENCH_CLIENT_SECRET",
    help="The client's secret: get the token from the Identity service over HTTP. "
    "Without it the token is issued from the data directory (operators only).",
)
@click.option(
    "--identity-url",
    "identity_url",
    default=None,
    help="Identity service URL (default: the configured issuer).",
)
def token(client_id: str, secret: str | None, identity_url: str | None) -> None:
    """Print an access token of CLIENT (client credentials)."""
    from workbench.settings import Settings

    settings = Settings()
    if secret:
        import httpx

        url = (identity_url or settings.identity_url or settings.issuer_url()).rstrip("/")
        response = httpx.post(
            f"{url}/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )
        if response.status_code != 200:
            from workbench.errors import Unauthenticated

            raise Unauthenticated(f"the Identity service refused the client: {response.text}")
        body = response.json()
        emit(body, lambda _c: click.echo(body["access_token"]))
        return
    from workbench.identity.directory import Directory
    from workbench.identity.provider import Provider, ProviderConfig

    directory = Directory.for_workbench(open_wb())
    provider = Provider(
        directory,
        ProviderConfig(
            issuer=settings.issuer_url(),
            audience=settings.identity_audience,
            access_token_ttl=settings.identity_access_token_ttl,
        ),
        manage_keys=False,
    )
    issued = provider.client_credentials_token(client_id)
    if directory.audit is not None:
        directory.audit.record(
            directory.require_client(client_id).tenant_id,
            actor=_actor(),
            action="token.issue",
            target=client_id,
        )
    emit(issued, lambda _c: click.echo(issued["access_token"]))


@click.option("--tenant", "tenant_id", required=True)
@click.option("--actor", default=None, help="Only entries of this actor.")
@click.option("--action", default=None, help="Only this action, or a prefix ending in '.'.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def audit(tenant_id: str, actor: str | None, action: str | None, limit: int) -> None:
    """Show a tenant's audit log, newest first."""
    from workbench.identity.audit import AuditLog

    entries = [
        e.to_document()
        for e in AuditLog.for_workbench(open_wb()).query(
            tenant_id, actor=actor, action=action, limit=limit
        )
    ]

    table = [
        (e["at"][:23], e["actor"], e["action"], e["target"], e["requestId"] or "") for e in entries
    ]
    emit(entries, _table(("at", "actor", "action", "target", "request id"), table))


def register(cli: click.Group) -> None:
    for group in (users, roles, clients):
        cli.add_command(group)
    wb_command(cli, "token")(token)
    wb_command(cli, "audit")(audit)
