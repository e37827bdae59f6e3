"""JupyterHub with the real proxy and the real Identity service: login, tenant spawn, kernel."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.hub.conftest import ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD
from workbench.hub.session import HubSession
from workbench.hub.stack import HubStack

pytestmark = [pytest.mark.hub, pytest.mark.integration, pytest.mark.slow]


def test_tenant_user_logs_in_spawns_and_reads_tenant_data(
    stack: HubStack, session: HubSession
) -> None:
    assert session.login("acme", "alice", ALICE_PASSWORD) == "alice@acme"
    form = session.options_form()
    assert "value='acme'" in form
    assert "globex" not in form  # a user never sees a tenant they may not use
    session.spawn("acme")
    kernels = session.server_api("GET", "/kernelspecs").json()
    assert kernels["default"] == "workbench-acme"
    assert list(kernels["kernelspecs"]) == ["workbench-acme"]
    kernel = session.start_kernel()
    result = session.execute(
        kernel,
        "import os\n"
        "print(os.environ['WORKBENCH_TENANT'], type(wb).__name__)\n"
        "print(wb.entities.count('Demo.Energy/EnergyMeter'))\n",
    )
    assert result.status == "ok", result.error
    first, second = result.stdout.splitlines()
    assert first == "acme RemoteTenant"
    assert int(second) > 0
    session.stop()


def test_user_cannot_spawn_into_another_tenant(stack: HubStack, session: HubSession) -> None:
    session.login("acme", "alice", ALICE_PASSWORD)
    answer = session.spawn("globex")
    assert answer.status_code == 403
    assert "may not use tenant 'globex'" in html.unescape(answer.text)
    assert session.server_model() is None
    # the REST API skips the form; the spawner refuses there too
    user = session.user or ""
    response = session.api("POST", f"/users/{user}/server", json={"tenant": "globex"})
    assert response.status_code >= 400 or session.server_model() is None
    # and the user's token does not read the other tenant's data
    token = session.api("GET", f"/users/{user}").json()
    assert "auth_state" not in token  # users do not see their own auth state
    access = _access_token(stack, "alice@acme")
    other = httpx.post(
        f"{stack.api_url}/tenants/globex/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert other.status_code == 403
    own = httpx.post(
        f"{stack.api_url}/tenants/acme/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert own.status_code == 200


def test_hub_admin_sees_all_servers(stack: HubStack) -> None:
    with HubSession(stack.hub_url) as bob, HubSession(stack.hub_url) as admin:
        bob.login("globex", "bob", BOB_PASSWORD)
        bob.spawn("globex")
        assert admin.login("system", "admin", ADMIN_PASSWORD) == "admin@system"
        users = admin.api("GET", "/users").json()
        running = {u["name"]: list(u["servers"]) for u in users if u.get("servers")}
        assert "bob@globex" in running
        assert admin.api("GET", "/users/bob@globex").json()["admin"] is False
        # a non-admin sees only themself
        assert bob.api("GET", "/users").status_code == 403
        bob.stop()


def _access_token(stack: HubStack, user: str) -> str:
    """The access token the hub keeps for ``user`` (read through the hub's admin API)."""
    with HubSession(stack.hub_url) as admin:
        admin.login("system", "admin", ADMIN_PASSWORD)
        state = admin.api("GET", f"/users/{user}").json().get("auth_state")
        assert state, "the admin API shows auth_state"
        return str(state["access_token"])


def test_tenant_user_runs_the_stream_notebook_in_the_hub(
    stack: HubStack, session: HubSession
) -> None:
    """The 'done when' path: log in, pick the tenant, open 03-stream-data.ipynb from the
    tenant's working directory and run it top to bottom in the tenant kernel, getting a plot."""
    session.login("acme", "alice", ALICE_PASSWORD)
    session.spawn("acme")
    listing = session.server_api("GET", "/contents").json()
    assert "03-stream-data.ipynb" in {item["name"] for item in listing["content"]}
    notebook = session.server_api("GET", "/contents/03-stream-data.ipynb").json()["content"]
    kernel = session.start_kernel()
    mimes: set[str] = set()
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        result = session.execute(kernel, source, timeout=120)
        assert result.status == "ok", f"cell {index} failed: {result.error}\n{source}"
        for output in result.outputs:
            mimes.update(output)
    # HoloViews renders through Bokeh: the plot arrives as a HoloViews/Bokeh display bundle
    assert any("holoviews" in m or "bokeh" in m for m in mimes), sorted(mimes)
    session.stop()


def test_the_tenant_is_asked_once_and_the_spawn_form_preselects_it(stack: HubStack) -> None:
    """Issue 9 part 3: no hub page asks for the tenant before the Identity login (whose form is
    the one place to type it), and the spawn form comes with the login tenant selected."""
    with HubSession(stack.hub_url) as probe:
        first = probe.http.get(f"{stack.hub_url}/hub/oauth_login?next=/hub/home")
        assert first.url.path == "/login"  # the Identity service's page, not a hub page
        assert str(first.url).startswith(stack.identity_url)
        assert first.text.count('name="tenant"') == 1
    with HubSession(stack.hub_url) as admin:
        assert admin.login("system", "admin", ADMIN_PASSWORD, deep_link=False) == "admin@system"
        form = admin.options_form()
        selected = re.findall(r"<option value='([^']+)' selected>", form)
        assert selected == ["system"], form
    with HubSession(stack.hub_url) as alice:
        alice.login("acme", "alice", ALICE_PASSWORD, deep_link=False)
        assert re.findall(r"<option value='([^']+)' selected>", alice.options_form()) == ["acme"]
