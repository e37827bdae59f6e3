"""Users, groups, roles and clients of a tenant (Identity's management API)."""

from __future__ import annotations

import secrets
from typing import Any

import pandas as pd
import panel as pn

from workbench.admin.views.base import AdminView, choose, in_background, queued, text, typed

__all__ = ["UsersView"]


class UsersView(AdminView):
    """List, create, disable, reset passwords, grant/revoke roles; clients and upstreams."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.tenant = pn.widgets.Select(
            label="Tenant", options=list(self.tenants), css_classes=["wb-users-tenant"]
        )
        self.tenant.param.watch(queued(self.refresh), "value")
        self.users_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=220,
            sizing_mode="stretch_width",
        )
        self.clients_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            height=160,
            sizing_mode="stretch_width",
        )
        self.upstreams_view = pn.pane.Markdown("")
        self.username = pn.widgets.TextInput(label="Username", css_classes=["wb-username"])
        self.email = pn.widgets.TextInput(label="E-mail")
        self.password = pn.widgets.PasswordInput(
            label="Initial password (empty: generated)", css_classes=["wb-password"]
        )
        self.create_button = pn.widgets.Button(label="Create user", color="primary")
        self.create_button.on_click(queued(self.create_user))
        self.user = pn.widgets.Select(label="User", options=[], css_classes=["wb-user"])
        self.role = pn.widgets.Select(label="Role", options=[], css_classes=["wb-role"])
        self.grant_button = pn.widgets.Button(label="Grant role", color="primary")
        self.grant_button.on_click(queued(lambda: self.change_role(grant=True)))
        self.revoke_button = pn.widgets.Button(label="Revoke role")
        self.revoke_button.on_click(queued(lambda: self.change_role(grant=False)))
        self.toggle_button = pn.widgets.Button(label="Disable / enable")
        self.toggle_button.on_click(queued(self.toggle_user))
        self.reset_button = pn.widgets.Button(label="Reset password")
        self.reset_button.on_click(queued(self.reset_password))
        self.client_id = pn.widgets.TextInput(label="New client id", css_classes=["wb-client-id"])
        self.client_button = pn.widgets.Button(label="Register confidential client")
        self.client_button.on_click(queued(self.create_client))
        self.client_select = pn.widgets.Select(
            label="Client", options=[], css_classes=["wb-client"]
        )
        self.rotate_button = pn.widgets.Button(label="Rotate secret")
        self.rotate_button.on_click(queued(self.rotate_secret))
        self.client_toggle = pn.widgets.Button(label="Disable / enable client")
        self.client_toggle.on_click(queued(self.toggle_client))
        self._clients: list[dict[str, Any]] = []
        self._users: list[dict[str, Any]] = []
        in_background(self._first_load)

    def _first_load(self) -> None:
        choose(self.role, self.attempt(self.client.roles) or [])
        self.refresh()

    def refresh(self) -> None:
        tenant = self.tenant.value
        if not tenant:
            return
        users = self.attempt(lambda: self.client.users(tenant))
        if users is None:
            return
        self._users = users
        rows = [
            {
                "username": u.get("username"),
                "email": u.get("email") or "",
                "enabled": u.get("enabled", True),
                "roles": ", ".join(u.get("roles") or []),
                "groups": ", ".join(u.get("groups") or []),
            }
            for u in users
        ]
        self.users_table.value = pd.DataFrame(
            rows, columns=["username", "email", "enabled", "roles", "groups"]
        )
        choose(self.user, [r["username"] for r in rows])
        clients = self.attempt(lambda: self.client.clients(tenant)) or []
        self._clients = clients
        choose(self.client_select, [str(c.get("clientId")) for c in clients])
        self.clients_table.value = pd.DataFrame(
            [
                {
                    "clientId": c.get("clientId"),
                    "public": c.get("public"),
                    "firstParty": c.get("firstParty"),
                    "enabled": c.get("enabled", True),
                    "grants": ", ".join(c.get("grantTypes") or []),
                    "roles": ", ".join(c.get("roles") or []),
                }
                for c in clients
            ],
            columns=["clientId", "public", "firstParty", "enabled", "grants", "roles"],
        )
        upstreams = self.attempt(lambda: self.client.upstreams(tenant)) or []
        self.upstreams_view.object = (
            "\n".join(f"- **{u.get('name')}** ({u.get('kind')})" for u in upstreams)
            or "No upstream identity providers."
        )

    def create_user(self) -> None:
        tenant, username = self.tenant.value, text(self.username)
        given = typed(self.password)
        password = given or secrets.token_urlsafe(12)
        shown = "" if given else f" Initial password (shown once): `{password}`"
        created = self.attempt(
            lambda: self.client.create_user(
                tenant, username, password=password, email=text(self.email) or None
            ),
            done=f"User **{username}** created in {tenant}.{shown}",
        )
        if created is not None:
            self.username.value = self.password.value = self.email.value = ""
            self.refresh()
            self.user.value = username

    def change_role(self, *, grant: bool) -> None:
        tenant, username, role = self.tenant.value, self.user.value, self.role.value
        call = self.client.grant_role if grant else self.client.revoke_role
        verb = "granted to" if grant else "revoked from"
        if (
            self.attempt(
                lambda: call(tenant, username, role), done=f"Role **{role}** {verb} **{username}**."
            )
            is not None
        ):
            self.refresh()

    def toggle_user(self) -> None:
        tenant, username = self.tenant.value, self.user.value
        user = next((u for u in self._users if u.get("username") == username), {})
        enabled = not user.get("enabled", True)
        state = "enabled" if enabled else "disabled"
        if (
            self.attempt(
                lambda: self.client.set_user_enabled(tenant, username, enabled),
                done=f"**{username}** {state}.",
            )
            is not None
        ):
            self.refresh()

    def reset_password(self) -> None:
        tenant, username = self.tenant.value, self.user.value
        password = secrets.token_urlsafe(12)
        self.attempt(
            lambda: self.client.reset_password(tenant, username, password),
            done=f"New password of **{username}** (shown once): `{password}`",
        )

    def create_client(self) -> None:
        tenant, client_id = self.tenant.value, text(self.client_id)
        created = self.attempt(
            lambda: self.client.create_client(tenant, client_id, grantTypes=["client_credentials"])
        )
        if created is not None:
            self.message.object = (
                f"Client **{client_id}** registered. Secret (shown once): "
                f"`{created.get('clientSecret')}`"
            )
            self.message.alert_type, self.message.visible = "success", True
            self.refresh()

    def rotate_secret(self) -> None:
        tenant, client_id = self.tenant.value, self.client_select.value
        secret = self.attempt(lambda: self.client.rotate_client_secret(tenant, client_id))
        if secret is not None:
            self.message.object = (
                f"New secret of **{client_id}** (shown once; the old one no longer works): "
                f"`{secret}`"
            )
            self.message.alert_type, self.message.visible = "success", True

    def toggle_client(self) -> None:
        tenant, client_id = self.tenant.value, self.client_select.value
        current = next((c for c in self._clients if c.get("clientId") == client_id), None)
        if current is None:
            return
        enable = not current.get("enabled", True)
        state = "enabled" if enable else "disabled (its tokens stop working)"
        if (
            self.attempt(
                lambda: self.client.set_client_enabled(tenant, client_id, enable),
                done=f"Client **{client_id}** {state}.",
            )
            is not None
        ):
            self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        create = pn.Card(
            self.username,
            self.email,
            self.password,
            self.create_button,
            title="Create a user",
            sizing_mode="stretch_width",
        )
        manage = pn.Card(
            self.user,
            self.role,
            pn.Row(self.grant_button, self.revoke_button),
            pn.Row(self.toggle_button, self.reset_button),
            title="Roles and access",
            sizing_mode="stretch_width",
        )
        clients = pn.Card(
            self.clients_table,
            pn.Row(self.client_id, self.client_button),
            pn.Row(self.client_select, self.rotate_button, self.client_toggle),
            "### Upstream identity providers",
            self.upstreams_view,
            title="Clients and upstream providers",
            sizing_mode="stretch_width",
        )
        return pn.Column(
            "## Users, roles and clients",
            self.tenant,
            self.message,
            self.users_table,
            pn.Row(create, manage),
            clients,
            sizing_mode="stretch_width",
        )
