"""Revoked access tokens: the Identity service's list, and every other service's copy of it.

Access tokens are JWTs that services verify on their own, so revoking one needs a list the
services consult. Two kinds of entries:

- a token id (``jti``) with the token's expiry: a token revoked at ``/revoke``, the access tokens
  of a refresh family that was revoked (logout, refresh-token reuse), and the tokens of the first
  exchange of an authorization code that was presented twice;
- a client and its current secret generation: rotating a client's secret revokes every token
  issued to it before (tokens carry the generation in the ``cgen`` claim, absent meaning 0).

:class:`RevocationList` keeps the list in the Identity service's system store (every Identity
process sees the same list) and serves it at ``GET /revocations``. :class:`RemoteRevocations`
is the services' copy: a daemon thread fetches that document every ``interval`` seconds (one
second by default, so a revocation reaches every service within about ``interval`` plus one
round trip, also when ``workbench up`` runs each service as its own process).
:class:`~workbench.identity.verification.JwtAuthenticator` asks it on every request; a service
that keeps a connection open (GraphQL over WebSocket) checks each operation with
:func:`check_not_revoked` (or by authenticating the connection again).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from workbench.errors import Unauthenticated
from workbench.storage.base import EntityStore

__all__ = [
    "CLIENT_GENERATION_CLAIM",
    "RemoteRevocations",
    "RevocationCheck",
    "RevocationList",
    "check_not_revoked",
    "revoked_in",
]

log = logging.getLogger("workbench.identity.revocation")

_TOKENS = "identity.revoked-jti"
_CLIENTS = "identity.revoked-clients"
#: the access-token claim holding the client's secret generation when the token was issued
CLIENT_GENERATION_CLAIM = "cgen"
_PRUNE_EVERY = 60.0


def revoked_in(document: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    """Whether ``claims`` (a verified access token) is revoked by a ``/revocations`` document
    (``{"tokens": {jti: expiry}, "clients": {client id: generation}}``)."""
    tokens = document.get("tokens") or {}
    if str(claims.get("jti", "")) in tokens:
        return True
    clients = document.get("clients") or {}
    generation = clients.get(str(claims.get("client_id", "")))
    if generation is None:
        return False
    return int(claims.get(CLIENT_GENERATION_CLAIM, 0) or 0) < int(generation)


class RevocationCheck(Protocol):
    """Anything that says whether a verified token is revoked."""

    def revoked(self, claims: Mapping[str, Any]) -> bool: ...


def check_not_revoked(revocations: RevocationCheck | None, claims: Mapping[str, Any]) -> None:
    """Raise :class:`~workbench.errors.Unauthenticated` when ``claims`` is revoked."""
    if revocations is not None and revocations.revoked(claims):
        raise Unauthenticated(
            "the token has been revoked (logout, a revoked refresh token or a rotated client "
            "secret); get a new one (log in again or use the client's current secret)"
        )


class RevocationList:
    """The Identity service's list of revoked tokens, in the system store's meta area."""

    def __init__(self, store: EntityStore) -> None:
        self._store = store
        self._pruned = time.monotonic()

    def revoke_token(self, jti: str, expires_at: float) -> None:
        """Revoke the access token ``jti`` until it expires anyway."""
        if jti and expires_at > time.time():
            self._store.put_meta(_TOKENS, jti, {"expiresAt": float(expires_at)})

    def revoke_client(self, client_id: str, generation: int) -> None:
        """Revoke every token of ``client_id`` issued with a generation below ``generation``."""
        self._store.put_meta(_CLIENTS, client_id, {"generation": int(generation)})

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the verified token ``claims`` is revoked (read from the store: immediate)."""
        jti = str(claims.get("jti", ""))
        if jti and self._store.get_meta(_TOKENS, jti) is not None:
            return True
        client = self._store.get_meta(_CLIENTS, str(claims.get("client_id", "")))
        if client is None:
            return False
        return revoked_in({"clients": {claims.get("client_id"): client["generation"]}}, claims)

    def document(self) -> dict[str, Any]:
        """What ``GET /revocations`` serves: the unexpired token ids and the client
        generations (expired entries are dropped from the store now and then)."""
        now = time.time()
        tokens = {
            jti: float(doc["expiresAt"])
            for jti, doc in self._store.list_meta(_TOKENS).items()
            if float(doc.get("expiresAt", 0)) > now
        }
        if time.monotonic() - self._pruned > _PRUNE_EVERY:
            self._pruned = time.monotonic()
            for jti, doc in self._store.list_meta(_TOKENS).items():
                if float(doc.get("expiresAt", 0)) <= now:
                    self._store.put_meta(_TOKENS, jti, None)
        clients = {
            client_id: int(doc["generation"])
            for client_id, doc in self._store.list_meta(_CLIENTS).items()
        }
        return {"tokens": tokens, "clients": clients, "generated": now}


class RemoteRevocations:
    """A service's copy of the Identity service's revocation list, refreshed every
    ``interval`` seconds by a daemon thread (started by :meth:`start` or the first check).

    When Identity cannot be reached the last list stays in use (logged once per outage): the
    service keeps working, and revocations made meanwhile apply once Identity answers again.
    """

    def __init__(self, url: str, *, interval: float = 1.0, timeout: float = 2.0) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self._document: dict[str, Any] = {}
        self.fetched: float | None = None  # time.monotonic() of the last good fetch
        self._failing = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def for_issuer(cls, base_url: str, **options: Any) -> RemoteRevocations:
        return cls(base_url.rstrip("/") + "/revocations", **options)

    def refresh(self) -> None:
        """Fetch the list now (raises nothing: a failure keeps the previous list)."""
        import httpx

        try:
            response = httpx.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("the revocation list is not a JSON object")
        except (httpx.HTTPError, ValueError) as exc:
            if not self._failing:
                log.warning("cannot fetch the revocation list from %s: %s", self.url, exc)
            self._failing = True
            return
        if self._failing:
            log.info("revocation list from %s fetched again", self.url)
        self._failing = False
        with self._lock:
            self._document = document
            self.fetched = time.monotonic()

    def start(self) -> None:
        """Start polling (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=_poll, args=(weakref.ref(self), self._stop), name="revocations", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        if self._thread is None:
            self.start()
        with self._lock:
            document = self._document
        return revoked_in(document, claims)


def _poll(ref: weakref.ref[RemoteRevocations], stop: threading.Event) -> None:
    """The polling loop; it ends with :meth:`RemoteRevocations.stop` or when the poller is
    garbage collected (it holds only a weak reference)."""
    while not stop.is_set():
        poller = ref()
        if poller is None:
            return
        poller.refresh()
        interval = poller.interval
        del poller
        stop.wait(interval)
