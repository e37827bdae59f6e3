"""Hub login through the Identity service: oauthenticator's ``GenericOAuthenticator``, configured.

- authorization code with PKCE (the hub is a confidential client *and* sends a code challenge);
- the tenant is asked once, on the Identity service's login page: ``/hub/oauth_login`` goes
  straight there (``?tenant=T`` or :attr:`WorkbenchAuthenticator.default_tenant` pre-fill it,
  travelling as ``acr_values=tenant:<id>``); the spawn form then preselects the tenant the user
  signed in to. :attr:`WorkbenchAuthenticator.ask_tenant` brings back a hub page asking first;
- ``auth_state`` keeps the token response plus ``allowed_tenants``, ``roles``, ``tenant_id`` and
  ``expires_at``, so the spawner can hand the server a token and list the user's tenants;
- :meth:`WorkbenchAuthenticator.refresh_user` exchanges the refresh token *before* the access
  token expires (within :attr:`refresh_margin` seconds), not after a failed call;
- hub admins are users holding one of :attr:`admin_roles` in one of :attr:`admin_tenants`
  (default: AdminPanelManagement in the system tenant), so a tenant owner is not a hub admin.

Hub user names are ``<preferred_username>@<home tenant>`` (user names are unique per tenant only).
"""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import urlencode

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from tornado import web
from traitlets import Bool, Integer, Set, Unicode, default

__all__ = ["TenantLoginHandler", "WorkbenchAuthenticator", "hub_username"]

#: the scopes the hub asks for: identity, roles and tenants, and the API for the servers
HUB_SCOPES = ("openid", "profile", "email", "roles", "allowed_tenants", "workbench_api")

_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def hub_username(user_info: dict[str, Any]) -> str:
    """``<preferred_username>@<home tenant>``; the home tenant is the first of
    ``allowed_tenants`` (the Identity service lists the user's own tenant first)."""
    name = user_info.get("preferred_username") or user_info.get("sub")
    tenants = user_info.get("allowed_tenants") or []
    if not name or not tenants:
        raise web.HTTPError(
            403,
            "the Identity service returned no user name or tenants; the hub needs the "
            "'profile' and 'allowed_tenants' scopes",
        )
    return f"{name}@{tenants[0]}".lower()


class TenantLoginHandler(OAuthLoginHandler):  # type: ignore[misc]
    """``/hub/oauth_login``: asks for the tenant when none is given, then redirects to the
    Identity service's authorize endpoint with ``acr_values=tenant:<id>``."""

    def _tenant(self) -> str | None:
        tenant = (self.get_argument("tenant", "") or "").strip().lower()
        if not tenant:
            return None
        if not _TENANT_ID.fullmatch(tenant) and tenant != "system":
            raise web.HTTPError(400, f"{tenant!r} is not a tenant id")
        return tenant

    def get(self) -> None:
        tenant = self._tenant()
        if tenant is None and self.authenticator.ask_tenant:
            self.finish(self._tenant_page())
            return
        self._acr_tenant = tenant or self.authenticator.default_tenant or None
        super().get()

    def authorize_redirect(self, *args: Any, **kwargs: Any) -> None:
        extra = dict(kwargs.pop("extra_params", None) or {})
        tenant = getattr(self, "_acr_tenant", None)
        if tenant:
            extra["acr_values"] = f"tenant:{tenant}"
        super().authorize_redirect(*args, extra_params=extra, **kwargs)

    def _tenant_page(self) -> str:
        """A minimal page (no external assets) asking which tenant to sign in to."""
        action = html.escape(self.request.path)
        next_url = html.escape(self.get_argument("next", "") or "")
        value = html.escape(self.authenticator.default_tenant or "")
        service = html.escape(self.authenticator.login_service)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sign in</title>"
            "<style>body{font-family:sans-serif;max-width:28em;margin:4em auto}"
            "input,button{font-size:1em;padding:.4em}</style></head><body>"
            f"<h1>Sign in with {service}</h1>"
            f"<form method='get' action='{action}'>"
            "<label for='tenant'>Tenant</label><br>"
            f"<input id='tenant' name='tenant' value='{value}' required autofocus "
            "pattern='[a-z0-9][a-z0-9\\-]{0,62}'>"
            f"<input type='hidden' name='next' value='{next_url}'>"
            "<button type='submit'>Continue</button></form></body></html>"
        )


class WorkbenchAuthenticator(GenericOAuthenticator):  # type: ignore[misc]
    """``GenericOAuthenticator`` against the Mesh Workbench Identity service."""

    login_handler = TenantLoginHandler

    identity_url = Unicode(
        "http://127.0.0.1:5003",
        config=True,
        help="The Identity service's issuer URL; authorize, token and userinfo URLs derive "
        "from it unless set explicitly.",
    )
    default_tenant = Unicode(
        "",
        config=True,
        help="Tenant pre-filled on the tenant page (and used when ask_tenant is False).",
    )
    ask_tenant = Bool(
        False,
        config=True,
        help="Without ?tenant=, show a hub page asking for the tenant before the Identity "
        "login (default False: the Identity login page asks, pre-filled with default_tenant).",
    )
    refresh_margin = Integer(
        300,
        config=True,
        help="Refresh the access token when it expires within this many seconds (servers "
        "get a token with at least this much life left).",
    )
    admin_roles = Set(
        {"AdminPanelManagement"},
        config=True,
        help="A user holding one of these roles in one of admin_tenants is a hub admin.",
    )
    admin_tenants = Set(
        {"system"},
        config=True,
        help="Home tenants whose users may be hub admins (tenant owners elsewhere are not).",
    )

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return f"{self.identity_url.rstrip('/')}/authorize"

    @default("token_url")
    def _token_url_default(self) -> str:
        return f"{self.identity_url.rstrip('/')}/token"

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return f"{self.identity_url.rstrip('/')}/userinfo"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return list(HUB_SCOPES)

    @default("login_service")
    def _login_service_default(self) -> str:
        return "Mesh Workbench"

    @default("enable_pkce")
    def _enable_pkce_default(self) -> bool:
        return True

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # the Identity service decides who may log in; the hub admits everyone it vouches for
        return True

    @default("auth_refresh_age")
    def _auth_refresh_age_default(self) -> int:
        return 60

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self) -> bool:
        return True

    @default("username_claim")
    def _username_claim_default(self) -> Any:
        return hub_username

    # ------------------------------------------------------------------ auth state

    def build_auth_state_dict(
        self, token_info: dict[str, Any], user_info: dict[str, Any]
    ) -> dict[str, Any]:
        state: dict[str, Any] = super().build_auth_state_dict(token_info, user_info)
        expires_in = token_info.get("expires_in")
        state["expires_at"] = time.time() + float(expires_in) if expires_in else None
        state["allowed_tenants"] = list(user_info.get("allowed_tenants") or [])
        state["roles"] = list(user_info.get("roles") or [])
        state["tenant_id"] = user_info.get("tenant_id")
        return state

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model.get("auth_state") or {}
        tenants = state.get("allowed_tenants") or []
        roles = set(state.get("roles") or [])
        home = tenants[0] if tenants else None
        if home in self.admin_tenants and roles & self.admin_roles:
            auth_model["admin"] = True
        elif auth_model.get("admin") is None:
            auth_model["admin"] = False
        return auth_model

    # ------------------------------------------------------------------ refresh

    def token_expires_within(self, auth_state: dict[str, Any], seconds: float) -> bool:
        """Whether the access token in ``auth_state`` expires within ``seconds``."""
        expires_at = auth_state.get("expires_at")
        return not expires_at or float(expires_at) - time.time() <= seconds

    async def refresh_user(
        self, user: Any, handler: Any = None, **kwargs: Any
    ) -> bool | dict[str, Any]:
        """Keep the user's tokens fresh: nothing to do while the access token has more than
        :attr:`refresh_margin` seconds left; otherwise exchange the refresh token (rotated by
        the Identity service) and rebuild the auth model (roles and tenants as they are now).
        False (log in again) when the refresh token is refused, e.g. the user was disabled."""
        auth_state = await user.get_auth_state()
        if not auth_state:
            return False
        if not self.token_expires_within(auth_state, self.refresh_margin):
            return True
        refresh_token = auth_state.get("refresh_token")
        if not refresh_token:
            return False
        try:
            token_info = await self.get_token_info(
                handler, self.build_refresh_token_request_params(refresh_token)
            )
        except Exception as exc:  # any refusal means: log in again
            self.log.info("refreshing the tokens of %s failed (%s); login needed", user.name, exc)
            return False
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = refresh_token
        user_info = await self.token_to_user(token_info)
        username = self.normalize_username(self.user_info_to_username(user_info))
        if username != user.name:
            self.log.warning("refreshed token of %s names %s; login needed", user.name, username)
            return False
        auth_model = {
            "name": username,
            "admin": True if username in self.admin_users else None,
            "auth_state": self.build_auth_state_dict(token_info, user_info),
        }
        self.log.info("refreshed the access token of %s", user.name)
        result: dict[str, Any] = await self.update_auth_model(auth_model)
        return result

    @staticmethod
    def tenant_login_url(base_url: str, tenant: str, next_url: str = "") -> str:
        """The URL that logs in to ``tenant`` directly (skipping the tenant page)."""
        query = {"tenant": tenant} | ({"next": next_url} if next_url else {})
        return f"{base_url.rstrip('/')}/oauth_login?{urlencode(query)}"
