"""What every Admin Panel page shares: the API it acts through and an in-place message area."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import panel as pn
import param
from panel.viewable import Viewer

from workbench.admin.api import AdminApi
from workbench.errors import WorkbenchError

__all__ = ["AdminView", "choose", "plotting", "text", "typed"]

T = TypeVar("T")


def plotting() -> None:
    """Load HoloViews' Bokeh backend (its element options, ``hv.opts.Curve``), on the first
    plot rather than at import: a server's pages may draw none. A backend already chosen (in a
    notebook, ``hv.extension``) is kept."""
    from holoviews import Store

    if Store.current_backend not in Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401

        Store.set_current_backend("bokeh")


def typed(widget: Any) -> str:
    """What a text widget holds now: ``value_input`` follows every keystroke, while ``value``
    changes only on Enter or blur, which can reach the server after the click that reads it."""
    current = getattr(widget, "value_input", None)
    return str(widget.value if current is None else current or "")


def text(widget: Any) -> str:
    """A text widget's content, stripped ('' when empty)."""
    return typed(widget).strip()


def choose(select: Any, options: Any) -> None:
    """Give ``select`` new ``options`` (a list, or a dict label -> value), keeping its value when
    it is still offered, else choosing the first option (a select never shows a blank choice
    while it has options)."""
    values = list(options.values()) if isinstance(options, dict) else list(options)
    current = select.value
    select.options = options
    if current in values:
        select.value = current
    elif values:
        select.value = values[0]


class AdminView(Viewer):
    """A page: acts through ``api`` (with the signed-in user's token) and reports in ``message``.

    ``tenants`` lists the tenants the page may offer (those of the user's token).
    """

    api = param.ClassSelector(class_=AdminApi, doc="The platform's APIs, as the signed-in user.")
    tenants = param.List(default=[], doc="Tenants the user may work on.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.message = pn.pane.Alert(
            "", alert_type="light", visible=False, sizing_mode="stretch_width"
        )

    @property
    def client(self) -> AdminApi:
        """The API (a page is always built with one)."""
        if self.api is None:
            raise TypeError(f"{type(self).__name__} needs api=AdminApi(...)")
        api: AdminApi = self.api
        return api

    def attempt(self, action: Callable[[], T], *, done: str | None = None) -> T | None:
        """Run ``action``; show the service's error (or ``done``) in place; None on error."""
        try:
            result = action()
        except WorkbenchError as exc:
            self.message.object = f"**{exc.code}**: {exc}"
            self.message.alert_type = "danger"
            self.message.visible = True
            return None
        if done:
            self.message.object = done
            self.message.alert_type = "success"
            self.message.visible = True
        return result
