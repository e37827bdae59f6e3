"""OAuth clients in the identity directory: registration, redirect URIs, secrets.

:class:`ClientDirectory` is the client half of :class:`~.directory.Directory` (which inherits
it); clients live in the system store's ``identity.clients`` namespace, keyed by client id
(unique over all tenants).

New clients get least privilege unless asked otherwise: no roles, not first-party (the
consent page is shown), and a client that acts for itself (client credentials) reads only
(``workbench_api.read_only``); clients signing users in may request every scope, and their
tokens carry the user's roles.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.identity.model import GRANT_TYPES, MACHINE_CLIENT_SCOPES, ROLES, SCOPES, Client
from workbench.identity.passwords import generate_secret, hash_secret, verify_password
from workbench.identity.revocation import RevocationList
from workbench.storage.base import EntityStore

__all__ = ["ClientDirectory", "check_redirect_uri", "check_roles", "now_iso"]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{1,127}$")
_CLIENTS = "identity.clients"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_roles(roles: Iterable[str]) -> list[str]:
    """``roles`` as a list, each checked to be one of the platform's roles."""
    out = []
    for role in roles:
        if role not in ROLES:
            raise ValidationError(f"unknown role {role!r}; the roles are: {', '.join(ROLES)}")
        out.append(role)
    return out


def _default_scopes(grants: list[str]) -> list[str]:
    """Least privilege: a client that only acts for itself reads; user-facing clients may ask
    for every scope (what their tokens allow is bounded by the user's roles)."""
    if set(grants) <= {"client_credentials"}:
        return list(MACHINE_CLIENT_SCOPES)
    return list(SCOPES)


class ClientDirectory:
    """Client registration and lookup (mixed into :class:`~.directory.Directory`)."""

    store: EntityStore
    _lock: threading.RLock

    def _check_tenant(self, tenant_id: str) -> str:
        raise NotImplementedError

    def _audit(self, tenant_id: str, actor: str, action: str, target: str, **details: Any) -> None:
        raise NotImplementedError

    def create_client(
        self,
        tenant_id: str,
        client_id: str,
        *,
        name: str | None = None,
        public: bool = False,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        grant_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        roles: Iterable[str] = (),
        first_party: bool = False,
        actor: str = "system",
        request_id: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it with its secret (None for public clients), which is
        shown this once and stored only as a hash."""
        self._check_tenant(tenant_id)
        if not _CLIENT_ID.fullmatch(client_id):
            raise ValidationError(
                f"client id {client_id!r} is invalid: 2-128 letters, digits and . _ : -"
            )
        grants = (
            list(grant_types)
            if grant_types is not None
            else (["authorization_code", "refresh_token"] if public else ["client_credentials"])
        )
        for grant in grants:
            if grant not in GRANT_TYPES:
                raise ValidationError(
                    f"unknown grant type {grant!r}; use one of {', '.join(GRANT_TYPES)}"
                )
        if public and "client_credentials" in grants:
            raise ValidationError(
                "a public client cannot use client_credentials: it has no secret to prove "
                "who it is; register a confidential client instead"
            )
        scope_list = list(scopes) if scopes is not None else _default_scopes(grants)
        for scope in scope_list:
            if scope not in SCOPES:
                raise ValidationError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        uris = [check_redirect_uri(uri) for uri in redirect_uris]
        if "authorization_code" in grants and not uris:
            raise ValidationError(
                f"client {client_id!r} uses the authorization code grant but has no redirect "
                "URI; give at least one (they are matched exactly)"
            )
        secret = None if public else generate_secret()
        client = Client(
            client_id=client_id,
            tenant_id=tenant_id,
            name=name or client_id,
            secret_hash=None if secret is None else hash_secret(secret),
            redirect_uris=uris,
            post_logout_redirect_uris=[check_redirect_uri(u) for u in post_logout_redirect_uris],
            grant_types=grants,
            scopes=scope_list,
            roles=check_roles(roles),
            first_party=first_party,
            created=now_iso(),
        )
        with self._lock:
            if self.store.get_meta(_CLIENTS, client_id) is not None:
                raise Conflict(f"client {client_id!r} already exists; choose another client id")
            self.store.put_meta(_CLIENTS, client_id, client.to_document())
        self._audit(
            tenant_id, actor, "client.create", client_id, public=public, request_id=request_id
        )
        return client, secret

    def set_redirect_uris(
        self, client_id: str, redirect_uris: Iterable[str], *, actor: str = "system"
    ) -> Client:
        """Replace a client's redirect URIs (matched exactly at authorize time)."""
        client = self.require_client(client_id)
        client.redirect_uris = [check_redirect_uri(uri) for uri in redirect_uris]
        with self._lock:
            self.store.put_meta(_CLIENTS, client_id, client.to_document())
        self._audit(client.tenant_id, actor, "client.redirects", client_id)
        return client

    def get_client(self, client_id: str) -> Client | None:
        doc = self.store.get_meta(_CLIENTS, client_id)
        return None if doc is None else Client.from_document(doc)

    def require_client(self, client_id: str) -> Client:
        client = self.get_client(client_id)
        if client is None:
            raise NotFound(f"client {client_id!r} does not exist")
        return client

    def list_clients(self, tenant_id: str | None = None) -> list[Client]:
        docs = self.store.list_meta(_CLIENTS)
        clients = [Client.from_document(docs[k]) for k in sorted(docs)]
        return [c for c in clients if tenant_id is None or c.tenant_id == tenant_id]

    def rotate_client_secret(
        self, client_id: str, *, actor: str = "system", request_id: str | None = None
    ) -> str:
        """A new secret for a confidential client: the old one stops working at once, and so
        do the access tokens issued to the client before (through the revocation list)."""
        with self._lock:
            client = self.require_client(client_id)
            if client.public:
                raise ValidationError(f"client {client_id!r} is public: it has no secret")
            secret = generate_secret()
            client.secret_hash = hash_secret(secret)
            client.generation += 1
            self.store.put_meta(_CLIENTS, client_id, client.to_document())
            # the tokens issued with the old secret stop working too (on every service)
            RevocationList(self.store).revoke_client(client_id, client.generation)
        self._audit(
            client.tenant_id, actor, "client.rotate-secret", client_id, request_id=request_id
        )
        return secret

    def set_client_enabled(
        self,
        client_id: str,
        enabled: bool,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> Client:
        """Disable (or enable again) a client: a disabled client gets no tokens, and the access
        tokens it holds stop working on every service (through the revocation list)."""
        with self._lock:
            client = self.require_client(client_id)
            if client.enabled == enabled:
                return client
            client.enabled = enabled
            if not enabled:
                client.generation += 1
            self.store.put_meta(_CLIENTS, client_id, client.to_document())
            if not enabled:
                RevocationList(self.store).revoke_client(client_id, client.generation)
        action = "client.enable" if enabled else "client.disable"
        self._audit(client.tenant_id, actor, action, client_id, request_id=request_id)
        return client

    def check_client_secret(self, client: Client, secret: str) -> bool:
        return client.secret_hash is not None and verify_password(client.secret_hash, secret)


def check_redirect_uri(uri: str) -> str:
    from urllib.parse import urlsplit

    if "\\" in uri or any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise ValidationError(
            f"redirect URI {uri!r} contains a backslash or a control character; "
            "give a plain absolute http(s) URL"
        )
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ValidationError(
            f"redirect URI {uri!r} is invalid: give an absolute http(s) URL without a fragment"
        )
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ValidationError(
            f"redirect URI {uri!r} uses plain http on a non-loopback host; use https"
        )
    return uri
