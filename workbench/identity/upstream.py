"""Logging in through an external OpenID Connect provider (generic, or a preset).

A tenant's OIDC provider is a directory document (``kind: oidc``) read into
:class:`OidcSettings`. The login is the authorization code flow with PKCE, state and nonce:
:meth:`OidcUpstream.authorization_url` sends the browser there, :meth:`OidcUpstream.finish`
exchanges the code, verifies the ID token against the provider's JWKS (RS256, issuer,
audience = our client id, nonce) and maps its claims to an
:class:`~workbench.identity.directory.ExternalIdentity`.

Presets fill in the discovery URL and claim names of well-known providers:

- ``azure``: Microsoft Entra ID, one directory (``tenant`` = the directory id)
- ``microsoft``: personal Microsoft accounts
- ``google``: Google accounts
- ``meta``: Facebook Login (Meta), OpenID Connect
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from workbench.errors import BackendUnavailable, Unauthenticated, ValidationError
from workbench.identity.directory import ExternalIdentity
from workbench.identity.model import ROLES
from workbench.identity.verification import JwtVerifier, RemoteJwks

__all__ = ["PRESETS", "OidcSettings", "OidcUpstream", "PendingLogin"]

#: well-known providers: discovery URL template and claim names
PRESETS: dict[str, dict[str, str]] = {
    "azure": {
        "discovery": "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "scope": "openid profile email",
    },
    "microsoft": {
        "discovery": "https://login.microsoftonline.com/consumers/v2.0/.well-known/openid-configuration",
        "username_claim": "email",
        "groups_claim": "",
        "scope": "openid profile email",
    },
    "google": {
        "discovery": "https://accounts.google.com/.well-known/openid-configuration",
        "username_claim": "email",
        "groups_claim": "",
        "scope": "openid profile email",
    },
    "meta": {
        "discovery": "https://www.facebook.com/.well-known/openid-configuration/",
        "username_claim": "email",
        "groups_claim": "",
        "scope": "openid email",
    },
    "generic": {
        "discovery": "{issuer}/.well-known/openid-configuration",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "scope": "openid profile email",
    },
}


@dataclass(frozen=True)
class OidcSettings:
    """One external OIDC provider of a tenant.

    ``preset`` picks defaults (see :data:`PRESETS`); ``issuer`` is required for ``generic``,
    ``tenant`` (directory id) for ``azure``. ``group_roles`` maps values of the groups claim
    (or, with ``roles_claim``, roles the upstream issues) to workbench roles.
    """

    name: str
    client_id: str
    client_secret: str | None = None
    preset: str = "generic"
    issuer: str | None = None
    tenant: str | None = None
    discovery_url: str | None = None
    scope: str | None = None
    username_claim: str | None = None
    groups_claim: str | None = None
    group_roles: Mapping[str, list[str]] = field(default_factory=dict)
    label: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OidcSettings:
        preset = str(doc.get("preset") or "generic")
        if preset not in PRESETS:
            raise ValidationError(
                f"unknown OIDC preset {preset!r}; use one of {', '.join(PRESETS)}"
            )
        roles = {str(k): list(v) for k, v in dict(doc.get("groupRoles") or {}).items()}
        for group, mapped in roles.items():
            unknown = [r for r in mapped if r not in ROLES]
            if unknown:
                raise ValidationError(f"OIDC group {group!r} maps to unknown roles {unknown}")
        if preset == "generic" and not doc.get("issuer") and not doc.get("discoveryUrl"):
            raise ValidationError("a generic OIDC provider needs 'issuer' (or 'discoveryUrl')")
        if preset == "azure" and not doc.get("tenant") and not doc.get("discoveryUrl"):
            raise ValidationError("the azure preset needs 'tenant' (the Entra directory id)")
        return cls(
            name=str(doc["name"]),
            client_id=str(doc["clientId"]),
            client_secret=doc.get("clientSecret"),
            preset=preset,
            issuer=doc.get("issuer"),
            tenant=doc.get("tenant"),
            discovery_url=doc.get("discoveryUrl"),
            scope=doc.get("scope"),
            username_claim=doc.get("usernameClaim"),
            groups_claim=doc.get("groupsClaim"),
            group_roles=roles,
            label=doc.get("label"),
        )

    def resolved_discovery_url(self) -> str:
        if self.discovery_url:
            return self.discovery_url
        template = PRESETS[self.preset]["discovery"]
        return template.format(issuer=(self.issuer or "").rstrip("/"), tenant=self.tenant or "")

    def claim(self, name: str) -> str:
        value = getattr(self, name)
        return str(value) if value is not None else PRESETS[self.preset][name]


@dataclass(frozen=True)
class PendingLogin:
    """What the browser carries (signed) between leaving for the upstream and coming back."""

    state: str
    nonce: str
    code_verifier: str
    tenant_id: str
    upstream: str
    next: str


class OidcUpstream:
    """Talks to one external provider: discovery, authorization URL, code exchange."""

    _metadata_cache: dict[str, tuple[float, dict[str, Any]]] = {}
    _cache_lock = threading.Lock()

    def __init__(self, settings: OidcSettings, *, timeout: float = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def metadata(self) -> dict[str, Any]:
        import httpx

        url = self.settings.resolved_discovery_url()
        with self._cache_lock:
            cached = self._metadata_cache.get(url)
        if cached is not None and time.monotonic() - cached[0] < 3600:
            return cached[1]
        try:
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendUnavailable(
                f"OIDC provider {self.settings.name!r}: discovery at {url} failed: {exc}"
            ) from exc
        with self._cache_lock:
            self._metadata_cache[url] = (time.monotonic(), document)
        return document

    def authorization_url(
        self, redirect_uri: str, tenant_id: str, next_url: str
    ) -> tuple[str, PendingLogin]:
        """Where to send the browser, and what to remember until it comes back."""
        meta = self.metadata()
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        pending = PendingLogin(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=verifier,
            tenant_id=tenant_id,
            upstream=self.settings.name,
            next=next_url,
        )
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.claim("scope"),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{meta['authorization_endpoint']}?{urlencode(params)}", pending

    def finish(self, code: str, redirect_uri: str, pending: PendingLogin) -> ExternalIdentity:
        """Exchange ``code``, verify the ID token and map it to an identity."""
        import httpx

        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": pending.code_verifier,
        }
        auth = None
        if self.settings.client_secret:
            auth = (self.settings.client_id, self.settings.client_secret)
        try:
            response = httpx.post(
                meta["token_endpoint"], data=form, auth=auth, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"OIDC provider {self.settings.name!r}: token request failed: {exc}"
            ) from exc
        if response.status_code != 200:
            raise Unauthenticated(
                f"the {self.settings.name} login was not accepted by the provider "
                f"({response.status_code}: {response.text[:200]})"
            )
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated(f"the {self.settings.name} provider returned no ID token")
        verifier = JwtVerifier(
            str(meta["issuer"]), self.settings.client_id, RemoteJwks(str(meta["jwks_uri"]))
        )
        claims = verifier.verify(id_token)
        if claims.get("nonce") != pending.nonce:
            raise Unauthenticated("the upstream ID token's nonce does not match this login")
        return self.identity(claims)

    def identity(self, claims: Mapping[str, Any]) -> ExternalIdentity:
        username_claim = self.settings.claim("username_claim")
        username = claims.get(username_claim) or claims.get("email") or claims.get("sub")
        if not isinstance(username, str) or not username:
            raise Unauthenticated(f"the {self.settings.name} ID token names no user")
        groups_claim = self.settings.claim("groups_claim")
        raw_groups = claims.get(groups_claim, []) if groups_claim else []
        groups = [str(g) for g in raw_groups] if isinstance(raw_groups, list) else []
        roles = sorted({r for g in groups for r in self.settings.group_roles.get(g, [])})
        email = claims.get("email")
        name = claims.get("name")
        return ExternalIdentity(
            source=f"oidc:{self.settings.name}",
            username=f"{self.settings.name}:{username}",
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
            groups=tuple(sorted(groups)),
            roles=tuple(roles),
            claims=dict(claims),
        )
