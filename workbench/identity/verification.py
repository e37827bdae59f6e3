"""Checking the Identity service's JWTs, and the Asset Repository's JWT authenticator.

:class:`JwtVerifier` checks a token's signature against the issuer's JWKS (cached, refetched
when a token names an unknown ``kid``, at most every few seconds), pins ``alg`` to RS256, and
checks ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` with a small leeway.

:class:`JwtAuthenticator` implements :class:`workbench.services.auth.Authenticator`: it turns a
verified token into a :class:`~workbench.services.auth.Principal` whose ``tenants`` are the
token's ``allowed_tenants`` and whose scopes are the operations the token's scopes and roles
allow (see :func:`operation_scopes`).
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
from starlette.requests import HTTPConnection

from workbench.errors import BackendUnavailable, Forbidden, Unauthenticated
from workbench.identity.model import API_SCOPE, DATA_MODEL_SCOPE, READ_ONLY_SCOPE
from workbench.services.auth import (
    CK_IMPORT_SCOPE,
    READ_SCOPE,
    STREAM_WRITE_SCOPE,
    WRITE_SCOPE,
    Authenticator,
    Principal,
    bearer_token,
)

__all__ = [
    "ALGORITHM",
    "CK_IMPORT_SCOPE",
    "STREAM_WRITE_SCOPE",
    "JwksSource",
    "JwtAuthenticator",
    "JwtVerifier",
    "RemoteJwks",
    "StaticJwks",
    "operation_scopes",
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


def operation_scopes(scopes: frozenset[str], roles: frozenset[str]) -> frozenset[str]:
    """What a token may do, from its OAuth scopes and roles.

    - any API scope reads (``assets:read``); only ``workbench_api`` changes data
      (``assets:write``): ``workbench_api.read_only`` never mutates, whatever the roles;
    - importing CK libraries needs DataModelManagement and ``workbench_api`` or
      ``workbench_api.data_model_management``;
    - stream writes need StreamDataWriter (or StreamDataAdmin) and ``workbench_api``.
    """
    out: set[str] = set()
    if scopes & {API_SCOPE, READ_ONLY_SCOPE, DATA_MODEL_SCOPE}:
        out.add(READ_SCOPE)
    if API_SCOPE in scopes and READ_ONLY_SCOPE not in scopes:
        out.add(WRITE_SCOPE)
        if roles & {"StreamDataWriter", "StreamDataAdmin"}:
            out.add(STREAM_WRITE_SCOPE)
    may_model = scopes & {API_SCOPE, DATA_MODEL_SCOPE} and READ_ONLY_SCOPE not in scopes
    if may_model and "DataModelManagement" in roles:
        out.add(CK_IMPORT_SCOPE)
    return frozenset(out)


#: routes of the Asset Repository that need an operation scope beyond read/write:
#: (method, path suffix after /tenants/{id}, prefix match) -> scope
_OPERATION_ROUTES: tuple[tuple[str, str, bool, str], ...] = (
    ("POST", "/ck/libraries", False, CK_IMPORT_SCOPE),
    ("POST", "/streams/", True, STREAM_WRITE_SCOPE),
    ("DELETE", "/streams/", True, STREAM_WRITE_SCOPE),
)


def required_operation(method: str, path: str) -> str | None:
    """The operation scope a REST route of the Asset Repository needs (None: read/write only)."""
    if not path.startswith("/tenants/"):
        return None
    _, _, rest = path[len("/tenants/") :].partition("/")
    rest = "/" + rest
    for route_method, suffix, prefix, scope in _OPERATION_ROUTES:
        if method == route_method and (rest.startswith(suffix) if prefix else rest == suffix):
            return scope
    return None


class JwtAuthenticator(Authenticator):
    """The Asset Repository's authenticator for the Identity service's access tokens.

    A missing or bad token is :class:`Unauthenticated` (401); a REST route needing an operation
    the token does not allow (CK import, stream writes) is :class:`Forbidden` (403). The route's
    tenant is checked against ``Principal.tenants`` (the token's ``allowed_tenants``) by the
    service, which answers 403 too.
    """

    name = "jwt"

    def __init__(self, verifier: JwtVerifier, *, enforce_operations: bool = True) -> None:
        self.verifier = verifier
        self.enforce_operations = enforce_operations

    @classmethod
    def from_settings(cls, settings: Any) -> JwtAuthenticator:
        """Verify tokens of ``settings.issuer_url()`` for ``settings.identity_audience``, with
        keys from ``WORKBENCH_IDENTITY_URL`` (default: the issuer) ``/jwks``."""
        issuer = settings.issuer_url()
        source = RemoteJwks.for_issuer(settings.identity_url or issuer)
        return cls(JwtVerifier(issuer, settings.identity_audience, source))

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        scopes = frozenset(str(claims.get("scope", "")).split())
        roles = frozenset(str(r) for r in claims.get("roles") or [])
        tenants = claims.get("allowed_tenants")
        if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
            raise Unauthenticated("the token carries no allowed_tenants")
        return Principal(
            subject=str(claims["sub"]),
            tenants=frozenset(tenants),
            scopes=operation_scopes(scopes, roles),
            roles=roles,
        )

    def authenticate(self, connection: HTTPConnection) -> Principal:
        token = bearer_token(connection)
        if token is None:
            raise Unauthenticated(
                "this request needs an access token from the Identity service: send "
                "'Authorization: Bearer <token>' (get one with 'workbench token' or by logging in)"
            )
        principal = self.principal(self.verifier.verify(token))
        if self.enforce_operations and connection.scope.get("type") == "http":
            needed = required_operation(connection.scope.get("method", "GET"), connection.url.path)
            if needed is not None and needed not in principal.scopes:
                raise Forbidden(
                    f"{principal.subject} may not do this: it needs the {needed!r} operation "
                    "(CK import: DataModelManagement role; stream writes: StreamDataWriter role; "
                    "both with the workbench_api scope)"
                )
        return principal

    def on_start(self) -> None:
        try:
            self.verifier.refresh()
            log.info("authentication: JWT from %s", self.verifier.issuer)
        except BackendUnavailable as exc:
            # normal while the platform starts (Identity may come up after this service)
            log.info(
                "authentication: JWT from %s (keys fetched on the first token)",
                self.verifier.issuer,
            )
            log.debug("JWKS not fetched at start: %s", exc)
