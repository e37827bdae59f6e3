"""Tokens the Identity service issues and the grants it keeps.

- access tokens and ID tokens: RS256 JWTs signed with the current key of
  :class:`~workbench.identity.keys.SigningKeys`;
- refresh tokens: opaque random strings, stored only as SHA-256 hashes, in families: every use
  rotates the token, and presenting an already rotated (or revoked) token revokes the whole
  family (reuse detection: a stolen token is useless once either party has used it);
- authorization codes (single use, short-lived) and device codes.

Grants live in the system store's meta area (``identity.refresh``, ``identity.codes``,
``identity.devices``); a process lock makes rotation a compare-and-set within one Identity
process.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt

from workbench.identity.keys import SigningKeys
from workbench.storage.base import EntityStore, MetaWrite, WriteBatch

__all__ = ["Grant", "Subject", "TokenIssuer", "TokenStore", "token_hash"]

_REFRESH = "identity.refresh"
_FAMILIES = "identity.refresh-families"
_CODES = "identity.codes"
_DEVICES = "identity.devices"
_DEVICE_USERS = "identity.device-users"
_REVOKED_JTI = "identity.revoked-jti"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
    """Refresh tokens, authorization codes and device codes (hashed where they are secrets)."""

    def __init__(self, store: EntityStore) -> None:
        self._store = store
        self.lock = threading.RLock()

    # --- refresh tokens ---
    def add_refresh(self, token: str, grant: Grant) -> None:
        key = token_hash(token)
        grant.kind = "refresh"
        grant.family = grant.family or uuid.uuid4().hex
        family = self._store.get_meta(_FAMILIES, grant.family) or {"tokens": []}
        family["tokens"] = [*family["tokens"], key]
        family["revoked"] = bool(family.get("revoked", False))
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
        """Revoke every refresh token descended from one login."""
        family = self._store.get_meta(_FAMILIES, family_id) or {"tokens": []}
        family["revoked"] = True
        self._store.put_meta(_FAMILIES, family_id, family)

    # --- authorization codes ---
    def add_code(self, code: str, grant: Grant) -> None:
        grant.kind = "code"
        self._store.put_meta(_CODES, token_hash(code), grant.to_document())

    def take_code(self, code: str) -> Grant | None:
        """The code's grant, deleted in the same step: a code works once, and a failed
        redemption (wrong verifier, wrong redirect URI) burns it too."""
        key = token_hash(code)
        with self.lock:
            doc = self._store.get_meta(_CODES, key)
            if doc is None:
                return None
            self._store.put_meta(_CODES, key, None)
            return Grant.from_document(key, doc)

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

    # --- revoked access tokens (by jti, until they expire) ---
    def revoke_jti(self, jti: str, expires_at: float) -> None:
        self._store.put_meta(_REVOKED_JTI, jti, {"expiresAt": expires_at})

    def jti_revoked(self, jti: str) -> bool:
        return self._store.get_meta(_REVOKED_JTI, jti) is not None


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
        self, subject: Subject, client_id: str, scope: str, ttl: int | None = None
    ) -> tuple[str, int]:
        """An access token for ``subject`` and its lifetime in seconds."""
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
            import base64

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
