"""SDK: the in-process client (``workbench.open``); the remote client arrives with the API."""

from workbench.client.local import Tenant, Tenants, Workbench, open_workbench

__all__ = ["Tenant", "Tenants", "Workbench", "open_workbench"]
