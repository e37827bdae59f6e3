"""The Admin Panel service (port 5005): Panel dashboards behind an Identity login."""

from workbench.services.admin.app import ADMIN_CLIENT, SERVICE_NAME, AdminConfig, serve

__all__ = ["ADMIN_CLIENT", "SERVICE_NAME", "AdminConfig", "serve"]
