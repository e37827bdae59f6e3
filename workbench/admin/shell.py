"""The Admin Panel: pages chosen by the signed-in user's roles, around the page components.

The roles decide which pages are offered; they are a convenience, not the protection: every
action of every page goes to a service API with the user's token, and the service decides.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from workbench.admin.api import AdminApi
from workbench.admin.metrics_store import MetricsStore
from workbench.admin.views.data import DataView
from workbench.admin.views.models import ModelsView
from workbench.admin.views.monitoring import MonitoringView
from workbench.admin.views.operations import OperationsView
from workbench.admin.views.settings_view import SettingsView
from workbench.admin.views.tenants import TenantsView
from workbench.admin.views.users import UsersView
from workbench.settings import Settings
from workbench.tenancy.ids import SYSTEM_TENANT

__all__ = ["PAGE_ROLES", "TITLE", "AdminShell", "admin_page", "token_claims"]

log = logging.getLogger("workbench.admin")

#: the roles that open each page (any one of them); platform pages need a system-tenant token
PAGE_ROLES: dict[str, frozenset[str]] = {
    "Tenants": frozenset({"TenantManagement", "AdminPanelManagement"}),
    "Users": frozenset({"UserManagement"}),
    "Monitoring": frozenset({"AdminPanelManagement", "TenantManagement"}),
    "Models": frozenset({"DataModelManagement", "Development", "TenantManagement"}),
    "Data": frozenset(),  # every signed-in user of a tenant
    "Operations": frozenset(
        {"CommunicationManagement", "BotManagement", "TenantManagement", "Development"}
    ),
    "Settings": frozenset({"AdminPanelManagement"}),
}
PLATFORM_PAGES = frozenset({"Settings"})
#: pages that read and write a tenant's own data: offered for the tenants the token allows
DATA_PAGES = frozenset({"Models", "Data", "Operations"})


TITLE = "Mesh Workbench · Admin Panel"
HEADER_BACKGROUND = "#1f3b57"
HEADER_CSS = """
.wb-signed-in { float: right; font-size: 0.6em; margin-top: 0.4em; }
.wb-signed-in a { color: white; }
"""


def admin_page(shell: Any, title: str = TITLE) -> pn.viewable.Viewable:
    """The page around ``shell``: a header bar with ``title`` (and, for an
    :class:`AdminShell`, who is signed in) above its pages.

    Not a Panel template: a ``BootstrapTemplate`` cost about as much server CPU per session as
    the page inside it (its Jinja page, its own models and stylesheets), for a header bar. The
    header is one HTML pane and the pages sit right under the page's column: each pane and
    layout is Bokeh models built and sent for every session.
    """
    signed_in = shell.signed_in_html() if isinstance(shell, AdminShell) else ""
    header = pn.pane.HTML(
        f"<span>{html.escape(title)}</span>"
        + (f'<span class="wb-signed-in">{signed_in}</span>' if signed_in else ""),
        sizing_mode="stretch_width",
        margin=0,
        css_classes=["wb-header"],
        styles={
            "background": HEADER_BACKGROUND,
            "color": "white",
            "font-size": "1.4em",
            "padding": "12px 20px",
        },
        stylesheets=[HEADER_CSS],
    )
    body = shell.body() if isinstance(shell, AdminShell) else shell
    return pn.Column(header, body, sizing_mode="stretch_width", margin=0)


def token_claims(token: str | None) -> dict[str, Any]:
    """The claims of a JWT, read without checking the signature (for choosing pages only)."""
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except ValueError:
        return {}
    return claims


class AdminShell(Viewer):
    """Navigation over the pages the user's roles open."""

    api = param.ClassSelector(class_=AdminApi)
    store = param.ClassSelector(class_=MetricsStore, allow_None=True)
    history = param.Parameter(
        default=None, doc="Where the monitoring plots come from (default: the store's samples)."
    )
    settings = param.ClassSelector(class_=Settings, allow_None=True)
    tenant_ids = param.List(
        default=None,
        allow_None=True,
        doc="The tenants offered, when the token is not a JWT (a static token); else from it.",
    )
    role_names = param.List(
        default=None,
        allow_None=True,
        doc="The roles that choose the pages, when the token is not a JWT; else from it.",
    )
    start_page = param.String(
        default=None, allow_None=True, doc="The page opened first (when the roles offer it)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.api is None:
            raise TypeError("AdminShell needs api=AdminApi(...)")
        self.client: AdminApi = self.api
        claims = token_claims(self.client.token)
        self.user = str(claims.get("preferred_username") or claims.get("sub") or "anonymous")
        roles = (claims.get("roles") or []) if self.role_names is None else self.role_names
        self.roles = frozenset(str(r) for r in roles)
        if self.tenant_ids is not None:
            allowed = [str(t) for t in self.tenant_ids]
        else:
            allowed = [str(t) for t in claims.get("allowed_tenants") or []]
        self.platform = SYSTEM_TENANT in allowed or claims.get("tenant_id") == SYSTEM_TENANT
        self.tenants = self._tenants(allowed)
        #: the tenants whose data the token may read (a platform admin manages every tenant,
        #: but reads a tenant's data only when the token allows that tenant)
        self.data_tenants = [t for t in allowed if t != SYSTEM_TENANT]

    def _tenants(self, allowed: list[str]) -> list[str]:
        if self.platform:
            try:
                return [t["id"] for t in self.client.tenants()]
            except Exception:  # shown on the pages that need it; the shell still opens
                return [t for t in allowed if t != SYSTEM_TENANT]
        return [t for t in allowed if t != SYSTEM_TENANT]

    def pages(self) -> list[str]:
        """The pages this user may open, in menu order."""
        out = []
        for page, roles in PAGE_ROLES.items():
            if page in PLATFORM_PAGES and not self.platform:
                continue
            if roles and not roles & self.roles:
                continue
            out.append(page)
        return out

    def guarded_page(self, name: str) -> Any:
        """``page(name)``, or the reason it cannot open (one failing page never takes the
        others down)."""
        try:
            return self.page(name)
        except Exception as exc:
            log.exception("admin page %s failed", name)
            return pn.pane.Alert(f"The {name} page could not open: {exc}", alert_type="danger")

    def page(self, name: str) -> Any:
        if name in DATA_PAGES and not self.data_tenants:
            return pn.pane.Alert(
                f"**{self.user}**'s token allows no tenant's data: the {name} page works on "
                "the data of a tenant. Sign in as a user of that tenant (or ask for access to "
                "it); tenants, users and monitoring are on their own pages.",
                alert_type="info",
            )
        common = {"api": self.api, "tenants": self.tenants}
        if name in DATA_PAGES:
            common["tenants"] = self.data_tenants
        if name == "Tenants":
            return TenantsView(**common)
        if name == "Users":
            return UsersView(**common)
        if name == "Monitoring":
            return MonitoringView(store=self.store, history=self.history, **common)
        if name == "Models":
            return ModelsView(**common)
        if name == "Data":
            return DataView(**common)
        if name == "Operations":
            return OperationsView(**common)
        if name == "Settings":
            return SettingsView(settings=self.settings or Settings(), **common)
        raise KeyError(name)

    def signed_in_html(self) -> str:
        """Who is signed in, with which roles, and the way out (HTML)."""
        roles = ", ".join(sorted(self.roles)) or "none"
        return (
            f"Signed in as <b>{html.escape(self.user)}</b> · roles: {html.escape(roles)} · "
            '<a href="/logout">log out</a>'
        )

    def body(self) -> pn.viewable.Viewable:
        """The pages as tabs (each built when first opened), or why there are none."""
        pages = self.pages()
        if not pages:
            return pn.pane.Alert(
                f"**{self.user}** has no role that opens an Admin Panel page; ask an "
                "administrator for TenantManagement, UserManagement or AdminPanelManagement.",
                alert_type="warning",
            )
        # a page is built when its tab is first opened: signing in costs one page, not six
        holders = [pn.Column(name=name, sizing_mode="stretch_width") for name in pages]
        tabs = pn.Tabs(*holders, sizing_mode="stretch_width", name="admin-pages")

        def show(index: int) -> None:
            if not holders[index].objects:
                holders[index].objects = [self.guarded_page(pages[index])]

        tabs.param.watch(lambda event: show(event.new), "active")
        first = pages.index(self.start_page) if self.start_page in pages else 0
        show(first)
        tabs.active = first
        return tabs

    def __panel__(self) -> pn.viewable.Viewable:
        """Who is signed in above the pages (a notebook's view; the server's page puts the
        first line into its header bar, :func:`admin_page`)."""
        header = pn.pane.HTML(self.signed_in_html(), sizing_mode="stretch_width")
        return pn.Column(header, self.body(), sizing_mode="stretch_width")
