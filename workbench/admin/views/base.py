"""What every Admin Panel page shares: the API it acts through and an in-place message area."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import panel as pn
import param
from panel.viewable import Viewer

from workbench.admin.api import AdminApi
from workbench.errors import WorkbenchError

__all__ = ["AdminView", "choose", "in_background", "plotting", "queued", "text", "typed"]

T = TypeVar("T")

#: set inside an action running on a worker thread: what it triggers runs inline, in order
_IN_ACTION = contextvars.ContextVar("admin_action", default=False)
#: one queue (a FIFO lock) per browser session: its actions run one at a time, in order
_TURNS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def in_background(action: Callable[..., Any], *args: Any) -> None:
    """Run ``action(*args)`` off the event loop, after the session's earlier actions.

    In a server session, called on the event loop (a browser event, a page being built),
    ``action`` is queued: a coroutine waits for the session's turn, then runs it in
    :func:`asyncio.to_thread`, so a slow service call holds up neither the other sessions nor
    this session's later events, which queue behind it in the order they came. The widget
    changes it makes are sent from the loop (Panel schedules updates made on other threads).
    Within an action, or outside a server (a notebook, a test), ``action`` runs at once: what an
    action triggers (a select it sets, whose watcher loads data) runs inline, as before.
    """
    doc = pn.state.curdoc
    if _IN_ACTION.get() or doc is None or doc.session_context is None:
        action(*args)
        return

    async def turn() -> None:
        lock = _TURNS.setdefault(doc, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(_as_action, action, *args)

    pn.state.execute(turn)


def _as_action(action: Callable[..., Any], *args: Any) -> None:
    _IN_ACTION.set(True)  # in the worker thread's copy of the context only
    action(*args)


def queued(action: Callable[..., Any], *args: Any) -> Callable[[Any], None]:
    """A widget callback (``on_click``, ``param.watch``) that runs ``action(*args)`` with
    :func:`in_background` (the event itself is not passed)."""
    return lambda _event: in_background(action, *args)


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
