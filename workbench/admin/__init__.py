"""The Admin Panel's components: Panel ``Viewer`` classes over the platform's service APIs.

The same components run in the Admin Panel service (``workbench serve admin``) and inside a
notebook, where ``wb.admin.tenants()`` shows the tenants page acting with the notebook's token::

    import workbench as wb
    wb.admin.tenants()          # the tenant tree, create / configure / delete
    wb.admin.users("demo")      # users, roles and clients of a tenant
"""

from __future__ import annotations

from typing import Any

__all__ = ["AdminApi", "AdminShell", "data", "monitoring", "notebook_api", "tenants", "users"]


def __getattr__(name: str) -> Any:
    # Panel is imported on first use only (the notebook extra brings it)
    if name == "AdminApi":
        from workbench.admin.api import AdminApi

        return AdminApi
    if name == "AdminShell":
        from workbench.admin.shell import AdminShell

        return AdminShell
    raise AttributeError(name)


def notebook_api(
    *, api_url: str | None = None, identity_url: str | None = None, token: str | None = None
) -> Any:
    """An :class:`~workbench.admin.api.AdminApi` with the notebook's connection.

    In a tenant kernel the hub's spawner sets ``WORKBENCH_API_URL`` and ``WORKBENCH_API_TOKEN``
    (the ``api_url`` and ``api_token`` settings); the Identity service is the
    ``identity_url`` setting, else the issuer. Arguments override them.
    """
    from workbench.admin.api import AdminApi
    from workbench.settings import current_settings

    settings = current_settings()
    api = api_url or settings.asset_repository_url()
    identity = identity_url or settings.identity_url or settings.issuer_url()
    secret = settings.api_token.get_secret_value() if settings.api_token else None
    bearer = token or secret
    return AdminApi(identity_url=identity.rstrip("/"), api_url=api.rstrip("/"), token=bearer)


def _tenant_list(api: Any) -> list[str]:
    return [str(t["id"]) for t in api.tenants()]


def tenants(api: Any = None) -> Any:
    """The Tenants page (tree, create, configure, delete) as a Panel component."""
    from workbench.admin.views.tenants import TenantsView

    api = api or notebook_api()
    return TenantsView(api=api, tenants=_tenant_list(api))


def users(tenant: str | None = None, api: Any = None) -> Any:
    """The Users page (users, roles, clients, upstream providers) of ``tenant``."""
    from workbench.admin.views.users import UsersView

    api = api or notebook_api()
    return UsersView(api=api, tenants=[tenant] if tenant else _tenant_list(api))


def data(tenant: str | None = None, api: Any = None) -> Any:
    """The Data page (find, edit, follow associations, plot stream data) of ``tenant``."""
    from workbench.admin.views.data import DataView

    api = api or notebook_api()
    return DataView(api=api, tenants=[tenant] if tenant else _tenant_list(api))


def monitoring(api: Any = None) -> Any:
    """The Monitoring page (health of every service, audit log) without the metrics history."""
    from workbench.admin.views.monitoring import MonitoringView

    api = api or notebook_api()
    return MonitoringView(api=api, store=None, tenants=_tenant_list(api))
