"""A hub user driven over HTTP: log in through the Identity service, spawn, run code in a kernel.

Used by the hub tests and ``workbench bench hub-spawn``. :class:`HubSession` is a scripted
browser (httpx, one cookie jar, redirects followed): the Identity login form is filled in with
its CSRF token, JupyterHub's forms carry their ``_xsrf``; the single-user server is then driven
through its REST API and kernel WebSocket with a hub API token of the user.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

__all__ = ["ExecutionResult", "HubError", "HubSession", "execute_in_kernel"]


class HubError(RuntimeError):
    """The hub or the Identity service did not do what the scripted user expected."""


def _form_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf"name='{name}'[^>]*value='([^']*)'", page
    )
    if not match:
        raise HubError(f"no {name!r} field on the page:\n{page[:1500]}")
    return html.unescape(match.group(1))


@dataclass
class ExecutionResult:
    status: str
    stdout: str = ""
    error: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)


class HubSession:
    """One user's browser session on the hub at ``hub_url`` (``http://127.0.0.1:8000``)."""

    def __init__(self, hub_url: str, *, timeout: float = 30.0) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.http = httpx.Client(follow_redirects=True, timeout=timeout)
        self.user: str | None = None
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    @property
    def _escaped_user(self) -> str:
        """The user name as JupyterHub puts it into URLs (``@`` stays)."""
        return quote(self.user or "", safe="@~")

    def __enter__(self) -> HubSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ login

    def login(self, tenant: str, username: str, password: str, *, deep_link: bool = True) -> str:
        """The OAuth flow: hub -> Identity login form -> hub; returns the hub user name.

        ``deep_link`` starts at ``/hub/oauth_login?tenant=T`` (the Identity login page comes
        pre-filled); without it the flow starts as a user's does, and the Identity login page
        must be the first page (the only one asking for the tenant)."""
        query = urlencode(
            {"tenant": tenant, "next": "/hub/home"} if deep_link else {"next": "/hub/home"}
        )
        page = self.http.get(f"{self.hub_url}/hub/oauth_login?{query}")
        if page.url.path != "/login" or page.status_code != 200:
            raise HubError(f"expected the Identity login page, got {page.url} {page.status_code}")
        form = {
            "csrf_token": _form_value(page.text, "csrf_token"),
            "next": _form_value(page.text, "next"),
            "tenant": tenant,
            "username": username,
            "password": password,
        }
        landed = self.http.post(page.url.copy_with(query=None), data=form)
        if not str(landed.url).startswith(self.hub_url) or landed.status_code != 200:
            raise HubError(f"login did not land on the hub: {landed.url} {landed.status_code}")
        self.user = self._whoami()
        return self.user

    def _xsrf(self) -> str:
        for cookie in self.http.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.startswith("/hub"):
                return str(cookie.value)
        self.http.get(f"{self.hub_url}/hub/home")
        for cookie in self.http.cookies.jar:
            if cookie.name == "_xsrf":
                return str(cookie.value)
        raise HubError("the hub set no _xsrf cookie")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A hub REST API call (``path`` after ``/hub/api``) with this session's cookie."""
        headers = {"X-XSRFToken": self._xsrf(), **kwargs.pop("headers", {})}
        return self.http.request(
            method,
            f"{self.hub_url}/hub/api{path}",
            headers=headers,
            follow_redirects=False,
            **kwargs,
        )

    def _whoami(self) -> str:
        response = self.api("GET", "/user")
        if response.status_code != 200:
            raise HubError(f"GET /hub/api/user answered {response.status_code}: {response.text}")
        return str(response.json()["name"])

    # ------------------------------------------------------------------ spawn

    def options_form(self, server: str = "") -> str:
        """The spawn page's HTML (the tenant select)."""
        return self.http.get(self._spawn_url(server)).text

    def _spawn_url(self, server: str) -> str:
        user = self._escaped_user
        return f"{self.hub_url}/hub/spawn/{user}" + (f"/{quote(server)}" if server else "")

    def spawn(self, tenant: str, server: str = "", *, timeout: float = 90.0) -> httpx.Response:
        """Submit the spawn form for ``tenant`` and wait until the server is ready; the
        response is the form's answer (a 403 page when the tenant is not allowed)."""
        answer = self.http.post(
            self._spawn_url(server),
            data={"tenant": tenant, "_xsrf": self._xsrf()},
            follow_redirects=False,
        )
        if answer.status_code >= 400:
            return answer
        self.wait_ready(server, timeout=timeout)
        return answer

    def server_model(self, server: str = "") -> dict[str, Any] | None:
        model = self.api("GET", f"/users/{self._escaped_user}").json()
        servers: dict[str, Any] = model.get("servers") or {}
        found: dict[str, Any] | None = servers.get(server)
        return found

    def wait_ready(self, server: str = "", *, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the server is ready: on the hub's progress event stream (the hub says
        when, no polling), else by polling the user model."""
        deadline = time.monotonic() + timeout
        if self._wait_progress(server, timeout):
            model = self.server_model(server)
            if model is not None and model.get("ready"):
                return model
        while time.monotonic() < deadline:
            model = self.server_model(server)
            if model is None:
                raise HubError(f"server {server!r} of {self.user} is gone (the spawn failed)")
            if model.get("ready"):
                return model
            time.sleep(0.1)
        raise HubError(f"server {server!r} of {self.user} was not ready within {timeout:.0f} s")

    def _wait_progress(self, server: str, timeout: float) -> bool:
        """Follow ``.../progress`` (server-sent events) until the ready event (True); False when
        the stream is unavailable or ends otherwise; a failed spawn raises."""
        user = self._escaped_user
        path = f"/users/{user}/server" + (f"s/{quote(server)}" if server else "") + "/progress"
        try:
            with self.http.stream(
                "GET",
                f"{self.hub_url}/hub/api{path}",
                headers={"X-XSRFToken": self._xsrf(), "Accept": "text/event-stream"},
                follow_redirects=False,
                timeout=httpx.Timeout(timeout, connect=10.0),
            ) as response:
                if response.status_code != 200:
                    return False
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        raise HubError(
                            f"server {server!r} of {self.user} failed to start: "
                            f"{event.get('message', '')}"
                        )
                    if event.get("ready"):
                        return True
        except (httpx.HTTPError, ValueError):
            return False
        return False

    def stop(self, server: str = "", *, timeout: float = 60.0) -> None:
        user = self._escaped_user
        path = f"/users/{user}/server" + (f"s/{quote(server)}" if server else "")
        response = self.api("DELETE", path)
        if response.status_code not in (202, 204, 400):
            raise HubError(f"stopping the server answered {response.status_code}")
        deadline = time.monotonic() + timeout
        while self.server_model(server) is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    # ------------------------------------------------------------------ the server

    def token(self) -> str:
        """A hub API token of this user (created once); accepted by the user's servers."""
        if self._token is None:
            response = self.api(
                "POST",
                f"/users/{self._escaped_user}/tokens",
                json={"note": "scripted session", "expires_in": 3600},
            )
            if response.status_code != 201:
                raise HubError(f"creating an API token answered {response.status_code}")
            self._token = str(response.json()["token"])
        return self._token

    def server_url(self, server: str = "") -> str:
        user = self._escaped_user
        return f"{self.hub_url}/user/{user}" + (f"/{quote(server)}" if server else "")

    def server_api(self, method: str, path: str, server: str = "", **kwargs: Any) -> httpx.Response:
        """A call to the user's server's REST API (``path`` after ``/api``), with a token."""
        headers = {"Authorization": f"token {self.token()}"}
        url = f"{self.server_url(server)}/api{path}"
        response = self.http.request(method, url, headers=headers, follow_redirects=False, **kwargs)
        if response.status_code >= 300 and response.status_code not in (403, 404):
            raise HubError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
        return response

    def start_kernel(self, server: str = "", name: str | None = None) -> str:
        body = {"name": name} if name else {}
        response = self.server_api("POST", "/kernels", server, json=body)
        if response.status_code != 201:
            raise HubError(f"starting a kernel answered {response.status_code}: {response.text}")
        return str(response.json()["id"])

    def kernel(self, kernel_id: str, server: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self.server_api("GET", f"/kernels/{kernel_id}", server).json()
        return result

    def execute(
        self, kernel_id: str, code: str, server: str = "", *, timeout: float = 60.0
    ) -> ExecutionResult:
        """Run ``code`` in the kernel over its WebSocket; waits for the execute reply."""
        return execute_in_kernel(
            self.server_url(server), kernel_id, code, self.token(), timeout=timeout
        )


def execute_in_kernel(
    server_url: str, kernel_id: str, code: str, token: str, *, timeout: float = 60.0
) -> ExecutionResult:
    """Run ``code`` in kernel ``kernel_id`` of the Jupyter server at ``server_url`` (its
    ``/api/kernels/<id>/channels`` WebSocket, JSON messages); waits for the reply and idle."""
    from websockets.sync.client import connect

    ws_url = server_url.replace("http", "ws", 1)
    session = uuid.uuid4().hex
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "username": "workbench",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
    result = ExecutionResult(status="pending")
    deadline = time.monotonic() + timeout
    with connect(
        f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={session}",
        additional_headers={"Authorization": f"token {token}"},
        open_timeout=timeout,
        max_size=64 * 2**20,  # the plotting loader carries BokehJS inline (about 6 MB)
    ) as ws:
        ws.send(json.dumps(request))
        reply_seen = idle_seen = False
        while not (reply_seen and idle_seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HubError(f"no execute reply within {timeout:.0f} s")
            message = json.loads(ws.recv(timeout=remaining))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message.get("msg_type") or message["header"]["msg_type"]
            content = message.get("content", {})
            if kind == "stream":
                result.stdout += content.get("text", "")
            elif kind == "error":
                result.error = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind in ("execute_result", "display_data"):
                result.outputs.append(content.get("data", {}))
            elif kind == "status" and content.get("execution_state") == "idle":
                idle_seen = True
            elif kind == "execute_reply":
                result.status = content.get("status", "error")
                reply_seen = True
    return result
