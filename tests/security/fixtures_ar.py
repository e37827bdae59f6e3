"""Fixtures of the Asset Repository attacks: a real Asset Repository verifying the real Identity
service's JWTs over HTTP (its JWKS), forged and legitimate tokens, and a small
``graphql-transport-ws`` client that waits on messages, never on time.

Import the fixtures into a test module (``from tests.security.fixtures_ar import ...``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import pytest
import websockets
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import DEMO_LIBRARY
from tests.identity.conftest import IdentityInstance, identity
from workbench.identity.revocation import RemoteRevocations
from workbench.identity.verification import JwtVerifier, RemoteJwks
from workbench.services.asset_repository.app import create_app as asset_repository_app
from workbench.services.auth import JwtAuthenticator
from workbench.testing.http import ServiceServer

__all__ = [
    "AUDIENCE",
    "Assets",
    "GraphQLSocket",
    "assets",
    "claims",
    "healthy",
    "identity",
    "sign",
]

AUDIENCE = "workbench-api"
#: roles of a token that may do everything the Asset Repository offers
ALL_AR_ROLES = ["Development", "DataModelManagement", "StreamDataWriter"]
#: a meter of the demo tenant (created by the ``assets`` fixture)
METER = "6560a1b2c3d4e5f607182932"
SMALL_LIBRARY = [
    "modelId: Demo.Water-1.0.0\ndependencies:\n  - System-[2.0,3.0)\n",
    """attributes:
  - {id: Flow, valueType: Double}
types:
  - typeId: Pump
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Demo.Water/Flow, name: Flow, isOptional: true}
""",
]


@dataclass
class Assets:
    """The running Asset Repository (``url``) and the Identity service whose tokens it takes."""

    url: str
    identity: IdentityInstance

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def http(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def audit(self, tenant: str = "demo") -> list[Any]:
        from workbench.identity.audit import AuditLog

        return list(AuditLog.for_workbench(self.identity.workbench).query(tenant))

    def revoke(self, token_claims: dict[str, Any]) -> None:
        """Revoke a token at Identity (what /revoke, logout or refresh reuse do)."""
        tokens = self.identity.service.provider.tokens
        tokens.revocations.revoke_token(str(token_claims["jti"]), float(token_claims["exp"]))

    def meter_names(self) -> set[str]:
        tenant = self.identity.workbench.tenant("demo")
        return {
            str(e.attributes.get("name"))
            for e in tenant.entities.find("Demo.Energy/EnergyMeter", first=1000).items
        }


def healthy(url: str) -> None:
    """The service still answers (an attack must not have broken it)."""
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def claims(identity: IdentityInstance, **overrides: Any) -> dict[str, Any]:
    """A legitimate access token's claims for tenant demo; ``None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": identity.url,
        "aud": AUDIENCE,
        "sub": "attacker",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": f"t-{time.monotonic_ns()}",
        "scope": "workbench_api",
        "tenant_id": "demo",
        "allowed_tenants": ["demo"],
        "roles": list(ALL_AR_ROLES),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    identity: IdentityInstance,
    token_claims: dict[str, Any],
    key: RSAKey | None = None,
    **header: Any,
) -> str:
    """``token_claims`` signed with the Identity service's current key (or ``key``)."""
    signing = identity.service.provider.keys.current()
    full = {"alg": "RS256", "kid": str(signing.kid), "typ": "JWT", **header}
    return jwt.encode(full, token_claims, key or signing)


@pytest.fixture
def assets(identity: IdentityInstance) -> Iterator[Assets]:
    """The Asset Repository on the Identity service's data directory; tenant demo holds the
    Demo.Energy model and one meter. No clock leeway, so expiry tests need not wait 30 s; the
    revocation list is polled from Identity every second."""
    from tests.conftest import DEMO_RUNTIME
    from workbench.runtime.files import import_runtime_file

    demo = identity.workbench.tenant("demo")
    demo.ck.import_library(DEMO_LIBRARY)
    import_runtime_file(demo.entities, demo.model, DEMO_RUNTIME)
    verifier = JwtVerifier(identity.url, AUDIENCE, RemoteJwks(identity.url + "/jwks"), leeway=0)
    revocations = RemoteRevocations.for_issuer(identity.url)  # polled, as across processes
    auth = JwtAuthenticator(verifier, revocations=revocations)
    app = asset_repository_app(workbench=identity.workbench, auth=auth)
    try:
        with ServiceServer(app) as server:
            yield Assets(server.url, identity)
    finally:
        revocations.stop()


class SocketClosed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    """A ``graphql-transport-ws`` client: ``async with GraphQLSocket(url, token) as ws``."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 15.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self._ws: Any = None

    async def __aenter__(self) -> GraphQLSocket:
        self._ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await self.send({"type": "connection_init", "payload": payload})
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(message))
        except websockets.ConnectionClosed as closed:
            raise self._closed(closed) from None

    async def receive(self) -> dict[str, Any]:
        """The next message; :class:`SocketClosed` when the server closed the socket."""
        try:
            text = await asyncio.wait_for(self._ws.recv(), self.timeout)
        except websockets.ConnectionClosed as closed:
            raise self._closed(closed) from None
        message: dict[str, Any] = json.loads(text)
        return message

    async def closed(self) -> SocketClosed:
        """Wait until the server closes the socket (messages before that are dropped)."""
        while True:
            try:
                await self.receive()
            except SocketClosed as closed:
                return closed

    @staticmethod
    def _closed(closed: Any) -> SocketClosed:
        frame = closed.rcvd
        return SocketClosed(frame.code if frame else None, frame.reason if frame else "")

    async def subscribe(self, operation_id: str, query: str, **variables: Any) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.send({"id": operation_id, "type": "subscribe", "payload": payload})

    async def result(self, operation_id: str, query: str, **variables: Any) -> dict[str, Any]:
        """Run a query or mutation: its ``next`` payload or its ``error`` message."""
        await self.subscribe(operation_id, query, **variables)
        while True:
            message = await self.receive()
            if message.get("id") == operation_id and message["type"] in ("next", "error"):
                return message
