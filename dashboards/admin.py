"""The Admin Panel as a plain Panel app, for developing its pages:

    WORKBENCH_API_TOKEN=... panel serve dashboards/admin.py

The pages act with the token in ``WORKBENCH_API_TOKEN`` against ``WORKBENCH_API_URL`` (default
the local Asset Repository). The service with sign-in, health and the metrics history is
``workbench serve admin``; both show the same components (``workbench.admin``).
"""

from __future__ import annotations

import panel as pn

from workbench.admin import notebook_api
from workbench.admin.shell import TITLE, AdminShell, admin_page

pn.config.resources = "server"
pn.extension("tabulator", design="bootstrap")

admin_page(AdminShell(api=notebook_api(), store=None), f"{TITLE} (development)").servable()
