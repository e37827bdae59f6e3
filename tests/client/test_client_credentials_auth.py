"""A long-running client's tokens (a promoted adapter's): renewed before they expire and after a
401, the refused request sent again with the new token."""

from __future__ import annotations

import json

import httpx
import pytest

from workbench.client.client_credentials import ClientCredentialsAuth
from workbench.client.remote import RemoteTenant
from workbench.errors import Unauthenticated


class Server:
    """Accepts only the newest token it issued."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.seen: list[tuple[str, str, bytes]] = []

    def fetch(self) -> tuple[str, float]:
        self.issued.append(f"token-{len(self.issued) + 1}")
        return self.issued[-1], self.lifetime

    def revoke(self) -> None:
        self.issued.append("revoked-by-the-server")

    def handle(self, request: httpx.Request) -> httpx.Response:
        sent = request.headers.get("Authorization", "")
        self.seen.append((request.url.path, sent, request.content))
        if sent != f"Bearer {self.issued[-1]}":
            return httpx.Response(401, json={"code": "UNAUTHENTICATED", "message": "expired"})
        return httpx.Response(200, json={"rtId": "a", "ckTypeId": "T", "attributes": {}})


def test_tokens_are_renewed_before_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(lifetime=900)
    clock = [1000.0]
    monkeypatch.setattr("workbench.client.client_credentials.time.monotonic", lambda: clock[0])
    auth = ClientCredentialsAuth(server.fetch, margin=60)
    with httpx.Client(transport=httpx.MockTransport(server.handle), auth=auth) as client:
        assert client.get("http://api/x").status_code == 200
        clock[0] += 839  # not yet due: 60 s before the end of 900 s
        assert client.get("http://api/x").status_code == 200
        clock[0] += 2
        assert client.get("http://api/x").status_code == 200
    assert server.issued == ["token-1", "token-2"]
    assert [s[1] for s in server.seen] == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_refused_token_is_renewed_once_and_the_request_sent_again() -> None:
    server = Server(lifetime=900)
    auth = ClientCredentialsAuth(server.fetch)
    tenant = RemoteTenant("http://api", "energy", auth=auth)
    tenant._http.client = httpx.Client(
        base_url="http://api", transport=httpx.MockTransport(server.handle), auth=auth
    )
    assert tenant._http.json("POST", "/entities", json={"voltage": 230})["rtId"] == "a"
    server.revoke()  # e.g. the client's secret was rotated
    assert tenant._http.json("POST", "/entities", json={"voltage": 231})["rtId"] == "a"
    paths = [(sent, json.loads(body)) for _, sent, body in server.seen]
    assert paths == [
        ("Bearer token-1", {"voltage": 230}),
        ("Bearer token-1", {"voltage": 231}),
        ("Bearer token-3", {"voltage": 231}),  # the same body, with the new token
    ]
    # a token the server refuses even fresh: the error, no loop
    server.revoke()
    auth._fetch = lambda: ("never-valid", 900.0)
    with pytest.raises(Unauthenticated, match="expired"):
        tenant._http.json("GET", "/entities/a")
    tenant.close()
