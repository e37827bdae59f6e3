"""A page's actions in a real Panel server, driven over Bokeh's session WebSocket as a browser
drives them: a slow service call holds up neither another session nor this session's order
(a select changed right before a click is applied before the click's action reads it)."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workbench.admin.api import AdminApi
from workbench.testing.http import free_port

pytestmark = [
    pytest.mark.integration,
    # Bokeh's client warns when a patch names a model its document already holds (the
    # tenants table's new rows): a client-side notice, not the server's doing
    pytest.mark.filterwarnings("ignore:reference already known"),
]

WAIT_S = 60.0


class GatedApi(AdminApi):
    """The tenants API in memory; creating the tenant ``slow`` waits for ``gate``."""

    def __init__(self) -> None:
        super().__init__(identity_url="http://127.0.0.1:9", api_url="http://127.0.0.1:9", token="t")
        self.known = [{"id": "acme", "parent": None}, {"id": "beta", "parent": None}]
        self.created: list[tuple[str, str | None]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def tenants(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.known]

    def create_tenant(self, tenant_id: str, **options: Any) -> dict[str, Any]:
        if tenant_id == "slow":
            self.entered.set()
            if not self.gate.wait(WAIT_S):
                raise TimeoutError("the test never opened the gate")
        self.created.append((tenant_id, options.get("parent")))
        tenant = {"id": tenant_id, "parent": options.get("parent")}
        self.known.append(tenant)
        return tenant


@pytest.fixture
def served() -> Iterator[tuple[str, GatedApi]]:
    import panel as pn

    from workbench.admin.views.tenants import TenantsView

    api = GatedApi()
    port = free_port()
    server = pn.serve(  # type: ignore[no-untyped-call]
        {"/": lambda: TenantsView(api=api, tenants=[])},
        port=port,
        address="127.0.0.1",
        show=False,
        threaded=True,
        websocket_origin=[f"127.0.0.1:{port}"],
    )
    try:
        _listening(f"http://127.0.0.1:{port}/")  # the server thread binds after pn.serve returns
        yield f"http://127.0.0.1:{port}/", api
    finally:
        server.stop()


def _listening(url: str) -> None:
    import time

    import httpx

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the Panel server at {url} did not answer within {WAIT_S} s")


def _models(document: Any, kind: str) -> list[Any]:
    return [m for m in document.models if kind in (c.__name__ for c in type(m).__mro__)]


def _find(document: Any, kind: str, **attributes: Any) -> Any:
    for model in _models(document, kind):
        if all(getattr(model, k, None) == v for k, v in attributes.items()):
            return model
    raise AssertionError(f"no {kind} with {attributes} in the document")


def _wait(session: Any, predicate: Callable[[], bool]) -> bool:
    """Run the client session's loop (receiving the server's patches) until ``predicate``."""
    if predicate():
        return True
    loop = session._connection.io_loop
    handle = loop.call_later(WAIT_S, loop.stop)
    session._connection._loop_until(predicate)
    loop.remove_timeout(handle)
    return predicate()


def _table_rows(document: Any) -> int:
    tables = _models(document, "DataTabulator")
    return max((len(c) for c in tables[0].source.data.values()), default=0) if tables else 0


def _create(document: Any, tenant_id: str, parent: str | None = None) -> None:
    """Type a tenant id, choose a parent, click "Create tenant" (one message each, in order)."""
    from bokeh.events import ButtonClick

    new_id = _find(document, "TextInput", placeholder="e.g. plant-linz")
    new_id.value_input = tenant_id
    new_id.value = tenant_id
    if parent is not None:
        _find(document, "Select", title="Parent (cascade from)").value = parent
    document.callbacks.send_event(ButtonClick(_find(document, "Button", label="Create tenant")))


def test_a_slow_action_stalls_neither_other_sessions_nor_this_sessions_order(
    served: tuple[str, GatedApi],
) -> None:
    # Bokeh's client runs its own event loop: on a thread of its own (a browser test's
    # Playwright keeps a loop running on this one)
    failed: list[BaseException] = []

    def drive() -> None:
        try:
            _drive(*served)
        except BaseException as exc:  # re-raised below, in the test
            failed.append(exc)

    client = threading.Thread(target=drive, daemon=True)
    client.start()
    client.join(timeout=4 * WAIT_S)
    assert not client.is_alive(), "the client sessions did not finish"
    if failed:
        raise failed[0]


def _drive(url: str, api: GatedApi) -> None:
    import panel.models
    from bokeh.client import pull_session

    for module in pkgutil.iter_modules(panel.models.__path__):  # the client knows every model
        importlib.import_module(f"panel.models.{module.name}")
    first = pull_session(url=url)
    try:
        document = first.document
        assert _wait(first, lambda: _table_rows(document) == 2), "the tenant table never filled"
        _create(document, "slow")
        assert _wait(first, api.entered.is_set), "the create action never started"
        # the action waits on its service: the parent chosen and the click sent now queue
        # behind it, in the order they came
        _create(document, "second", parent="acme")
        # meanwhile another user's page opens and fills
        other = pull_session(url=url)
        try:
            assert _wait(other, lambda: _table_rows(other.document) == 2)
        finally:
            other.close()
        assert api.created == []  # still waiting, and the second click did not overtake it
        api.gate.set()
        assert _wait(first, lambda: len(api.created) == 2), api.created
        assert api.created == [("slow", None), ("second", "acme")]
        assert _wait(first, lambda: _table_rows(document) == 4), "the table missed the tenants"
    finally:
        first.close()
