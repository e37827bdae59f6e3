"""Checking the Identity service's JWTs.

:class:`JwtVerifier` checks a token's signature against the issuer's JWKS (cached, refetched
when a token names an unknown ``kid``, at most every few seconds), pins ``alg`` to RS256, and
checks ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` with a small leeway. Revoked tokens are
refused through a :mod:`~workbench.identity.revocation` list (the services poll Identity's every
second), asked by the services' authenticators.

What a verified token may do at a service is that service's policy, not this module's: the
Asset Repository's authenticator and policy are :class:`workbench.services.auth.JwtAuthenticator`
and :mod:`workbench.services.authorization`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from workbench.errors import BackendUnavailable, Unauthenticated

__all__ = [
    "ALGORITHM",
    "JwksSource",
    "JwtVerifier",
    "RemoteJwks",
    "StaticJwks",
]

log = logging.getLogger("workbench.identity.verification")

#: the only signature algorithm accepted
ALGORITHM = "RS256"

_VERIFIED_CACHE_SIZE = 10_000

JwksSource = Callable[[], Mapping[str, RSAKey]]


class StaticJwks:
    """Keys from a callable in this process (the Identity service verifying its own tokens)."""

    def __init__(self, keys: Callable[[], Mapping[str, RSAKey]]) -> None:
        self._keys = keys

    def __call__(self) -> Mapping[str, RSAKey]:
        return self._keys()


class RemoteJwks:
    """Keys fetched from a JWKS URL over HTTP (with a short timeout)."""

    def __init__(self, url: str, *, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = timeout

    def __call__(self) -> Mapping[str, RSAKey]:
        import httpx

        try:
            response = httpx.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendUnavailable(
                f"cannot fetch the signing keys from {self.url}: {exc}; is the Identity "
                "service running and WORKBENCH_IDENTITY_URL right?"
            ) from exc
        keys: dict[str, RSAKey] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                keys[str(jwk["kid"])] = RSAKey.import_key(jwk)
        return keys

    @classmethod
    def for_issuer(cls, issuer: str) -> RemoteJwks:
        return cls(issuer.rstrip("/") + "/jwks")


@dataclass(frozen=True)
class VerifiedToken:
    header: dict[str, Any]
    claims: dict[str, Any]


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


class JwtVerifier:
    """Verifies RS256 JWTs of one issuer for one audience.

    ``leeway`` (seconds) absorbs clock skew for ``exp``, ``nbf`` and ``iat``. An unknown
    ``kid`` makes the verifier refetch the JWKS, but not more often than ``refetch_interval``
    seconds (so garbage tokens cannot make it hammer the issuer).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JwksSource,
        *,
        leeway: float = 30.0,
        refetch_interval: float = 10.0,
        cache_ttl: float = 3600.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._jwks = jwks
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.cache_ttl = cache_ttl
        self._keys: Mapping[str, RSAKey] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()
        # verified tokens by their text: a client reuses its token for many requests, and an
        # RS256 check costs ~0.3 ms; time claims are re-checked on every hit
        self._verified: dict[str, dict[str, Any]] = {}

    def refresh(self) -> None:
        """Fetch the key set now."""
        keys = self._jwks()
        with self._lock:
            self._keys = dict(keys)
            self._fetched = time.monotonic()
            self._verified = {}  # a key may have been withdrawn

    def _key(self, kid: str) -> RSAKey | None:
        now = time.monotonic()
        key = self._keys.get(kid)
        if key is not None and now - self._fetched < self.cache_ttl:
            return key
        if now - self._fetched >= self.refetch_interval or key is not None:
            try:
                self.refresh()
            except BackendUnavailable:
                if key is None:
                    raise
                log.warning("JWKS refresh failed; using the cached keys")
                return key
        return self._keys.get(kid)

    def verify(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of ``token``; raises Unauthenticated saying what is wrong."""
        if audience is None:
            cached = self._verified.get(token)
            if cached is not None:
                self._check_claims(cached, self.audience)
                return dict(cached)
        parts = token.split(".")
        if len(parts) != 3:
            raise Unauthenticated("the bearer token is not a JWT")
        try:
            header = _b64json(parts[0])
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unauthenticated("the bearer token's header is not valid JSON") from exc
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"the token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key (kid)")
        key = self._key(kid)
        if key is None:
            raise Unauthenticated("the token was signed with a key this issuer does not publish")
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except (JoseError, ValueError) as exc:
            raise Unauthenticated("the token's signature is invalid") from exc
        claims = dict(decoded.claims)
        self._check_claims(claims, audience or self.audience)
        if audience is None:
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified = {}
            self._verified[token] = claims
        return dict(claims)

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise Unauthenticated("the token was issued by another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise Unauthenticated(f"the token is not meant for this service (audience {audience})")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthenticated("the token has no expiry")
        if now > exp + self.leeway:
            raise Unauthenticated("the token has expired; get a new one (refresh or log in)")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or now + self.leeway < nbf):
            raise Unauthenticated("the token is not valid yet")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or now + self.leeway < iat:
            raise Unauthenticated("the token's issue time is missing or in the future")
        if not isinstance(claims.get("sub"), str):
            raise Unauthenticated("the token has no subject")
