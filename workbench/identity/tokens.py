"""Tokens the Identity service issues and the grants it keeps.

- access tokens and ID tokens: RS256 JWTs signed with the current key of
  :class:`~workbench.identity.keys.SigningKeys`;
- refresh tokens: opaque random strings, stored only as SHA-256 hashes, in families: every use
  rotates the token, and presenting an already rotated (or revoked) token revokes the whole
  family (reuse detection: a stolen token is useless once either party has used it);
- authorization codes (single use, short-lived) and device codes.

Grants live in the system store's meta area (``identity.refresh``, ``identity.codes``,
``identity.devices``); a process lock makes rotation a compare-and-set within one Identity
process. Revoked access tokens are listed by :class:`~.revocation.RevocationList`: a revoked
refresh family revokes the access tokens issued from it, and an authorization code presented a
second time revokes the tokens of its first exchange (RFC 6749 section 4.1.2). Sessions ended
by a logout are kept here too, so that their cookie no longer authorises anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt

from workbench.identity.keys import SigningKeys
from workbench.identity.revocation import CLIENT_GENERATION_CLAIM, RevocationList
from workbench.storage.base import EntityStore, MetaWrite, WriteBatch

__all__ = ["Grant", "Subject", "TokenIssuer", "TokenStore", "token_hash", "unverified_claims"]

_REFRESH = "identity.refresh"
_FAMILIES = "identity.refresh-families"
_CODES = "identity.codes"
_DEVICES = "identity.devices"
_DEVICE_USERS = "identity.device-users"
_ENDED_SESSIONS = "identity.ended-sessions"
#: how long a redeemed code is remembered (to revoke its tokens if it comes back)
_USED_CODE_MEMORY = 3600.0
_PRUNE_EVERY = 60.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT this process just signed (no verification: never for input)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


@dataclass
class Subject:
    """Whom a token is issued to: a user (or a client acting for itself), the tenant selected
    for this token, and what they may do. ``nonce``/``auth_time`` feed the ID token."""

    sub: str
    tenant_id: str
    allowed_tenants: list[str]
    roles: list[str]
    username: str | None = None
    email: str | None = None
    name: str | None = None
    nonce: str | None = None
    auth_time: int | None = None
    client_only: bool = False

    def get_user_id(self) -> str:  # Authlib's user interface
        return self.sub

    def to_document(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "tenantId": self.tenant_id,
            "allowedTenants": list(self.allowed_tenants),
            "roles": list(self.roles),
            "username": self.username,
            "email": self.email,
            "name": self.name,
            "nonce": self.nonce,
            "authTime": self.auth_time,
            "clientOnly": self.client_only,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Subject:
        return cls(
            sub=doc["sub"],
            tenant_id=doc["tenantId"],
            allowed_tenants=list(doc.get("allowedTenants") or []),
            roles=list(doc.get("roles") or []),
            username=doc.get("username"),
            email=doc.get("email"),
            name=doc.get("name"),
            nonce=doc.get("nonce"),
            auth_time=doc.get("authTime"),
            client_only=bool(doc.get("clientOnly", False)),
        )


@dataclass
class Grant:
    """A stored grant: an authorization code, a refresh token or a device code."""

    kind: str
    client_id: str
    scope: str
    subject: Subject | None
    expires_at: float
    created: float = field(default_factory=time.time)
    redirect_uri: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    family: str | None = None
    state: str = "active"  # active | rotated | revoked | used | approved | denied
    user_code: str | None = None
    key: str = ""

    # --- Authlib model interfaces (authorization code, token, device credential) ---
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_client_id(self) -> str:
        return self.client_id

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.state != "active"

    def get_user(self) -> Subject | None:
        return self.subject

    def get_user_code(self) -> str | None:
        return self.user_code

    def get_nonce(self) -> str | None:
        return self.subject.nonce if self.subject else None

    def get_auth_time(self) -> int | None:
        return self.subject.auth_time if self.subject else None

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "clientId": self.client_id,
            "scope": self.scope,
            "subject": None if self.subject is None else self.subject.to_document(),
            "expiresAt": self.expires_at,
            "created": self.created,
            "redirectUri": self.redirect_uri,
            "codeChallenge": self.code_challenge,
            "codeChallengeMethod": self.code_challenge_method,
            "family": self.family,
            "state": self.state,
            "userCode": self.user_code,
        }

    @classmethod
    def from_document(cls, key: str, doc: dict[str, Any]) -> Grant:
        subject = doc.get("subject")
        return cls(
            kind=doc["kind"],
            client_id=doc["clientId"],
            scope=doc.get("scope", ""),
            subject=None if subject is None else Subject.from_document(subject),
            expires_at=float(doc["expiresAt"]),
            created=float(doc.get("created", 0)),
            redirect_uri=doc.get("redirectUri"),
            code_challenge=doc.get("codeChallenge"),
            code_challenge_method=doc.get("codeChallengeMethod"),
            family=doc.get("family"),
            state=doc.get("state", "active"),
            user_code=doc.get("userCode"),
            key=key,
        )


class TokenStore:
    """Refresh tokens, authorization codes and device codes (hashed where they are secrets),
    the revocation list and the ended sessions."""

    def __init__(self, store: EntityStore) -> None:
        self._store = store
        self.lock = threading.RLock()
        self.revocations = RevocationList(store)
        self._pruned = time.monotonic()

    # --- refresh tokens ---
    def add_refresh(
        self, token: str, grant: Grant, access: tuple[str, float] | None = None
    ) -> None:
        """Store a refresh token; ``access`` (jti, expiry) is the access token issued with it,
        revoked with the family."""
        key = token_hash(token)
        grant.kind = "refresh"
        grant.family = grant.family or uuid.uuid4().hex
        family = self._store.get_meta(_FAMILIES, grant.family) or {"tokens": []}
        family["tokens"] = [*family["tokens"], key]
        family["revoked"] = bool(family.get("revoked", False))
        if access is not None:
            now = time.time()
            kept = [a for a in family.get("access") or [] if float(a[1]) > now]
            family["access"] = [*kept, [access[0], float(access[1])]]
        self._store.apply(
            WriteBatch(
                meta=[
                    MetaWrite(_REFRESH, key, grant.to_document()),
                    MetaWrite(_FAMILIES, grant.family, family),
                ]
            )
        )

    def get_refresh(self, token: str) -> Grant | None:
        key = token_hash(token)
        doc = self._store.get_meta(_REFRESH, key)
        if doc is None:
            return None
        grant = Grant.from_document(key, doc)
        if grant.family is not None:
            family = self._store.get_meta(_FAMILIES, grant.family)
            if family is not None and family.get("revoked"):
                grant.state = "revoked"
        return grant

    def set_refresh_state(self, grant: Grant, state: str) -> None:
        grant.state = state
        self._store.put_meta(_REFRESH, grant.key, grant.to_document())

    def revoke_family(self, family_id: str) -> None:
        """Revoke every refresh token descended from one login, and the access tokens
        issued with them."""
        family = self._store.get_meta(_FAMILIES, family_id) or {"tokens": []}
        family["revoked"] = True
        self._store.put_meta(_FAMILIES, family_id, family)
        for jti, expires_at in family.get("access") or []:
            self.revocations.revoke_token(str(jti), float(expires_at))

    # --- authorization codes ---
    def add_code(self, code: str, grant: Grant) -> None:
        grant.kind = "code"
        self._store.put_meta(_CODES, token_hash(code), grant.to_document())
        self._prune_codes()

    def take_code(self, code: str) -> Grant | None:
        """The code's grant, marked used in the same step: a code works once, and a failed
        redemption (wrong verifier, wrong redirect URI) burns it too. A code presented again
        revokes the tokens its first exchange issued (:meth:`record_exchange`)."""
        key = token_hash(code)
        with self.lock:
            doc = self._store.get_meta(_CODES, key)
            if doc is None:
                return None
            if doc.get("state", "active") != "active":
                self._revoke_exchange(doc)
                return None
            self._store.put_meta(_CODES, key, dict(doc, state="used"))
            return Grant.from_document(key, doc)

    def record_exchange(self, code_key: str, access: tuple[str, float], family: str | None) -> None:
        """Remember what the code ``code_key`` (its hash) was exchanged for."""
        with self.lock:
            doc = self._store.get_meta(_CODES, code_key)
            if doc is None:
                return
            issued = {"jti": access[0], "exp": float(access[1]), "family": family}
            self._store.put_meta(_CODES, code_key, dict(doc, issued=issued))

    def _revoke_exchange(self, doc: dict[str, Any]) -> None:
        issued = doc.get("issued") or {}
        if issued.get("family"):
            self.revoke_family(str(issued["family"]))
        if issued.get("jti"):
            self.revocations.revoke_token(str(issued["jti"]), float(issued["exp"]))

    def _prune_codes(self) -> None:
        if time.monotonic() - self._pruned < _PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        now = time.time()
        for key, doc in self._store.list_meta(_CODES).items():
            if float(doc.get("expiresAt", 0)) + _USED_CODE_MEMORY < now:
                self._store.put_meta(_CODES, key, None)
        for sid, doc in self._store.list_meta(_ENDED_SESSIONS).items():
            if float(doc.get("until", 0)) < now:
                self._store.put_meta(_ENDED_SESSIONS, sid, None)

    # --- device codes ---
    def add_device(self, device_code: str, grant: Grant) -> None:
        grant.kind = "device"
        key = token_hash(device_code)
        self._store.apply(
            WriteBatch(
                meta=[
                    MetaWrite(_DEVICES, key, grant.to_document()),
                    MetaWrite(_DEVICE_USERS, str(grant.user_code), {"device": key}),
                ]
            )
        )

    def get_device(self, device_code: str) -> Grant | None:
        key = token_hash(device_code)
        doc = self._store.get_meta(_DEVICES, key)
        return None if doc is None else Grant.from_document(key, doc)

    def device_by_user_code(self, user_code: str) -> Grant | None:
        ref = self._store.get_meta(_DEVICE_USERS, user_code.strip().upper())
        if ref is None:
            return None
        doc = self._store.get_meta(_DEVICES, ref["device"])
        return None if doc is None else Grant.from_document(ref["device"], doc)

    def save_device(self, grant: Grant) -> None:
        self._store.put_meta(_DEVICES, grant.key, grant.to_document())

    def delete_device(self, grant: Grant) -> None:
        self._store.apply(
            WriteBatch(
                meta=[
                    MetaWrite(_DEVICES, grant.key, None),
                    MetaWrite(_DEVICE_USERS, str(grant.user_code), None),
                ]
            )
        )

    # --- revoked access tokens ---
    def revoked(self, claims: dict[str, Any]) -> bool:
        """Whether the verified access token ``claims`` has been revoked."""
        return self.revocations.revoked(claims)

    # --- sessions ended by a logout ---
    def end_session(self, sid: str, until: float) -> None:
        """Mark the login session ``sid`` ended (remembered until its cookie expires)."""
        self._store.put_meta(_ENDED_SESSIONS, sid, {"until": float(until)})

    def session_ended(self, sid: str) -> bool:
        return self._store.get_meta(_ENDED_SESSIONS, sid) is not None


class TokenIssuer:
    """Signs access and ID tokens for one issuer."""

    def __init__(
        self, keys: SigningKeys, issuer: str, audience: str, *, access_ttl: int = 900
    ) -> None:
        self.keys = keys
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.access_ttl = access_ttl

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.current()
        return jwt.encode({"alg": "RS256", "kid": str(key.kid), "typ": "JWT"}, claims, key)

    def access_token(
        self,
        subject: Subject,
        client_id: str,
        scope: str,
        ttl: int | None = None,
        *,
        client_generation: int = 0,
    ) -> tuple[str, int]:
        """An access token for ``subject`` and its lifetime in seconds; ``client_generation``
        (the client's secret generation) lets a rotation of the secret revoke it."""
        now = int(time.time())
        lifetime = ttl or self.access_ttl
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject.sub,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": scope,
            "tenant_id": subject.tenant_id,
            "allowed_tenants": list(subject.allowed_tenants),
            "roles": list(subject.roles),
        }
        if subject.username:
            claims["preferred_username"] = subject.username
        if client_generation:
            claims[CLIENT_GENERATION_CLAIM] = client_generation
        return self._sign(claims), lifetime

    def id_token(
        self, subject: Subject, client_id: str, scope: str, access_token: str | None = None
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "azp": client_id,
            "sub": subject.sub,
            "iat": now,
            "exp": now + self.access_ttl,
            "auth_time": subject.auth_time or now,
            "tenant_id": subject.tenant_id,
        }
        if subject.nonce:
            claims["nonce"] = subject.nonce
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["at_hash"] = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        claims.update(userinfo_claims(subject, scope))
        return self._sign(claims)


def userinfo_claims(subject: Subject, scope: str) -> dict[str, Any]:
    """The claims the granted scopes release about ``subject`` (ID token, userinfo)."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": subject.sub}
    if "profile" in scopes:
        if subject.username:
            claims["preferred_username"] = subject.username
        if subject.name:
            claims["name"] = subject.name
    if "email" in scopes and subject.email:
        claims["email"] = subject.email
    if "roles" in scopes:
        claims["roles"] = list(subject.roles)
    if "allowed_tenants" in scopes:
        claims["allowed_tenants"] = list(subject.allowed_tenants)
        claims["tenant_id"] = subject.tenant_id
    return claims


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
