"""SDK: the in-process client (``workbench.open``) and the remote one (``workbench.connect``),
with the same API (tenants aside)."""

from workbench.client.local import Tenant, Tenants, Workbench, open_workbench

__all__ = ["Tenant", "Tenants", "Workbench", "open_workbench"]
