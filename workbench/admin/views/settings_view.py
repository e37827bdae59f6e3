"""System settings page: the settings tree, each value with where it comes from."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import panel as pn
import param
from pydantic import SecretStr

from workbench.admin.views.base import AdminView
from workbench.settings import Settings

__all__ = ["SettingsView", "settings_table"]


def settings_table(settings: Settings, environ: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per setting: name, environment variable, value (secrets masked), source."""
    environ = dict(os.environ if environ is None else environ)
    rows = []
    for name, field in type(settings).model_fields.items():
        variable = f"WORKBENCH_{name.upper()}"
        value: Any = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "••••••" if value.get_secret_value() else ""
        else:
            shown = "" if value is None else str(value)
        if variable in environ:
            source = "environment"
        elif name in settings.model_fields_set:
            source = "command line / configuration"
        else:
            source = "default"
        rows.append(
            {
                "setting": name,
                "variable": variable,
                "value": shown,
                "source": source,
                "description": field.description or "",
            }
        )
    return pd.DataFrame(rows, columns=["setting", "variable", "value", "source", "description"])


class SettingsView(AdminView):
    """The Admin Panel process's settings tree (the same tree every service reads)."""

    settings = param.ClassSelector(class_=Settings, doc="The settings shown.")

    def __panel__(self) -> pn.viewable.Viewable:
        table = pn.widgets.Tabulator(
            settings_table(self.settings or Settings()),
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            height=480,
        )
        note = pn.pane.Markdown(
            "Every setting is read from `WORKBENCH_<NAME>` in the environment (or the command "
            "line of `workbench serve`); per-tenant configuration is on the Tenants page."
        )
        return pn.Column("## System settings", note, table, sizing_mode="stretch_width")
