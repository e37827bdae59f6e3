"""The authenticator port: who is calling, and which tenants and operations they hold.

Services never look at credentials themselves; they ask an :class:`Authenticator` for a
:class:`Principal` and check the route's tenant and operation against it (the route declares
what it needs, :func:`workbench.services.access.requires`). Implementations:

- :class:`JwtAuthenticator`: the Identity service's access tokens (the default), verified by
  :class:`workbench.identity.verification.JwtVerifier`; the token's scopes and roles become
  operations by the policy of :mod:`workbench.services.authorization`.
- :class:`StaticTokenAuthenticator`: bearer tokens from settings (``WORKBENCH_API_TOKEN``), only
  in the explicit development mode.
- :class:`NoAuthAuthenticator`: everyone is an anonymous principal allowed everything; only with
  an explicit ``--no-auth`` flag, and it warns on every start.
"""

from __future__ import annotations

import hmac
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from workbench.errors import BackendUnavailable, Forbidden, Unauthenticated, ValidationError
from workbench.identity.revocation import check_not_revoked
from workbench.services.authorization import (
    ALL_SCOPES,
    CK_IMPORT_SCOPE,
    READ_SCOPE,
    STREAM_WRITE_SCOPE,
    WRITE_SCOPE,
    how_to_get,
    operation_scopes,
)
from workbench.settings import Settings

if TYPE_CHECKING:
    from workbench.identity.revocation import RevocationCheck
    from workbench.identity.verification import JwtVerifier

__all__ = [
    "ALL_SCOPES",
    "CK_IMPORT_SCOPE",
    "READ_SCOPE",
    "STREAM_WRITE_SCOPE",
    "WRITE_SCOPE",
    "Authenticator",
    "JwtAuthenticator",
    "NoAuthAuthenticator",
    "Principal",
    "StaticTokenAuthenticator",
    "authenticator_from_settings",
    "bearer_token",
]

log = logging.getLogger("workbench.services.auth")

# the operation scopes (ALL_SCOPES, READ_SCOPE, ...) live with the policy
# (workbench.services.authorization) and are re-exported here (__all__)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``tenants`` lists the tenants the caller may use; ``None`` means every tenant (a platform
    token). ``scopes`` are the operations it may do (``assets:read``, ``assets:write``, see
    :mod:`workbench.services.authorization`); ``roles`` are the caller's roles, for services
    that authorise by role. ``expires_at`` (epoch seconds) is when the credentials stop being
    accepted (None: never); ``token_id`` the token's ``jti``, if any.
    """

    subject: str
    tenants: frozenset[str] | None = None
    scopes: frozenset[str] = ALL_SCOPES
    roles: frozenset[str] = field(default_factory=frozenset)
    anonymous: bool = False
    expires_at: float | None = None
    token_id: str | None = None

    def may_use(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants

    def check_tenant(self, tenant_id: str) -> None:
        """Raise :class:`Forbidden` unless the caller may use ``tenant_id``."""
        if not self.may_use(tenant_id):
            raise Forbidden(
                f"{self.subject} may not use tenant {tenant_id!r}; ask an administrator for "
                "access or use a token issued for that tenant"
            )

    def check_scope(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the caller holds ``scope``."""
        if scope not in self.scopes:
            raise Forbidden(
                f"{self.subject} may not do this: it needs the {scope!r} operation; "
                f"{how_to_get(scope)}"
            )


class Authenticator(ABC):
    """Turns a request's credentials into a :class:`Principal`.

    Override :meth:`authenticate`; raise :class:`~workbench.errors.Unauthenticated` when the
    credentials are missing or invalid. It is called for HTTP requests and WebSocket handshakes
    alike (both are :class:`~starlette.requests.HTTPConnection`), on the event loop: keep it
    fast or cache (JWKS fetches belong in a background refresh).
    """

    #: shown in logs and on ``/readyz``
    name = "authenticator"

    @abstractmethod
    def authenticate(self, connection: HTTPConnection) -> Principal:
        """The caller of ``connection``; raise Unauthenticated when it cannot be established."""

    def on_start(self) -> None:  # noqa: B027 - optional hook
        """Called once when the service starts (log configuration, warm caches)."""


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (None when there is no header).

    WebSocket clients that cannot set headers (browsers) send the header's value as
    ``Authorization`` in the ``connection_init`` payload; the GraphQL WebSocket handler then
    authenticates a copy of the handshake carrying that header.
    """
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <token>'; other schemes are not accepted"
        )
    return token.strip()


class StaticTokenAuthenticator(Authenticator):
    """Accepts fixed bearer tokens, each mapped to the principal it stands for.

    ``StaticTokenAuthenticator("s3cret")`` accepts one token for every tenant; pass ``tenants``
    to restrict it, or build one from several tokens with :meth:`from_tokens`. Tokens are
    compared in constant time.
    """

    name = "static-token"

    def __init__(self, token: str, *, tenants: Iterable[str] | None = None) -> None:
        self._tokens: list[tuple[bytes, Principal]] = []
        self._add(token, tenants, "static-token")

    @classmethod
    def from_tokens(cls, tokens: Mapping[str, Iterable[str] | None]) -> StaticTokenAuthenticator:
        """One authenticator for several tokens: ``{token: tenants or None (all)}``."""
        items = list(tokens.items())
        if not items:
            raise ValidationError("a static-token authenticator needs at least one token")
        first, first_tenants = items[0]
        authenticator = cls(first, tenants=first_tenants)
        for index, (token, tenants) in enumerate(items[1:], start=2):
            authenticator._add(token, tenants, f"static-token-{index}")
        return authenticator

    def _add(self, token: str, tenants: Iterable[str] | None, subject: str) -> None:
        if len(token) < 8:
            raise ValidationError(
                "the API token is too short; use at least 8 characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        allowed = None if tenants is None else frozenset(tenants)
        self._tokens.append((token.encode(), Principal(subject, allowed)))

    def authenticate(self, connection: HTTPConnection) -> Principal:
        token = bearer_token(connection)
        if token is None:
            raise Unauthenticated(
                "this request needs a bearer token: send 'Authorization: Bearer <token>' "
                "(the service's WORKBENCH_API_TOKEN)"
            )
        offered = token.encode()
        match: Principal | None = None
        for expected, principal in self._tokens:
            # compare against every token so timing does not reveal which one nearly matched
            if hmac.compare_digest(offered, expected):
                match = principal
        if match is None:
            raise Unauthenticated("the bearer token is not valid for this service")
        return match

    def on_start(self) -> None:
        log.info("authentication: static bearer token(s)", extra={"tokens": len(self._tokens)})


class NoAuthAuthenticator(Authenticator):
    """Lets every caller in as an anonymous principal with every tenant and scope.

    Only for a developer's own machine: the service uses it only with ``--no-auth`` and logs a
    warning every time it starts.
    """

    name = "no-auth"

    _PRINCIPAL = Principal("anonymous", None, ALL_SCOPES, frozenset(), anonymous=True)

    def authenticate(self, connection: HTTPConnection) -> Principal:
        return self._PRINCIPAL

    def on_start(self) -> None:
        log.warning(
            "authentication is OFF (--no-auth): anyone who can reach this port can read and "
            "change every tenant's data; never use this outside a developer machine"
        )


class JwtAuthenticator(Authenticator):
    """Turns the Identity service's access tokens into principals.

    A missing or bad token is :class:`Unauthenticated` (401). The principal's ``tenants`` are
    the token's ``allowed_tenants``, its operations come from the token's scopes and roles
    (:func:`workbench.services.authorization.operation_scopes`); what a route needs is declared
    on the route, not here. ``revocations`` (Identity's revocation list, or a service's polled
    copy of it) is asked on every authentication: a revoked token is Unauthenticated.
    """

    name = "jwt"

    def __init__(
        self,
        verifier: JwtVerifier,
        *,
        revocations: RevocationCheck | None = None,
    ) -> None:
        self.verifier = verifier
        self.revocations = revocations

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtAuthenticator:
        """Verify tokens of ``settings.issuer_url()`` for ``settings.identity_audience``, with
        keys from ``WORKBENCH_IDENTITY_URL`` (default: the issuer) ``/jwks`` and the revocation
        list from its ``/revocations`` (polled every second)."""
        from workbench.identity.revocation import RemoteRevocations
        from workbench.identity.verification import JwtVerifier, RemoteJwks

        issuer = settings.issuer_url()
        base = settings.identity_url or issuer
        return cls(
            JwtVerifier(issuer, settings.identity_audience, RemoteJwks.for_issuer(base)),
            revocations=RemoteRevocations.for_issuer(base),
        )

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        scopes = frozenset(str(claims.get("scope", "")).split())
        roles = frozenset(str(r) for r in claims.get("roles") or [])
        tenants = claims.get("allowed_tenants")
        if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
            raise Unauthenticated("the token carries no allowed_tenants")
        jti = claims.get("jti")
        return Principal(
            subject=str(claims["sub"]),
            tenants=frozenset(tenants),
            scopes=operation_scopes(scopes, roles),
            roles=roles,
            expires_at=float(claims["exp"]) + self.verifier.leeway,
            token_id=jti if isinstance(jti, str) else None,
        )

    def authenticate(self, connection: HTTPConnection) -> Principal:
        token = bearer_token(connection)
        if token is None:
            raise Unauthenticated(
                "this request needs an access token from the Identity service: send "
                "'Authorization: Bearer <token>' (get one with 'workbench token' or by logging in)"
            )
        claims = self.verifier.verify(token)
        check_not_revoked(self.revocations, claims)
        return self.principal(claims)

    def on_start(self) -> None:
        start = getattr(self.revocations, "start", None)
        if start is not None:
            start()  # poll the revocation list from now on
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


def authenticator_from_settings(
    settings: Settings, *, no_auth: bool = False, dev_static_token: bool = False
) -> Authenticator:
    """The authenticator the settings ask for.

    By default requests carry JWTs from the Identity service (verified against its JWKS). A
    static bearer token (``WORKBENCH_API_TOKEN``) is accepted only in the explicit development
    mode (``--dev-static-token`` / ``WORKBENCH_DEV_STATIC_TOKEN=true``); no authentication only
    with ``--no-auth``."""
    if no_auth:
        return NoAuthAuthenticator()
    if not (dev_static_token or settings.dev_static_token):
        return JwtAuthenticator.from_settings(settings)
    log.warning(
        "development mode: accepting the static WORKBENCH_API_TOKEN instead of Identity JWTs; "
        "never use this in production"
    )
    if settings.api_token is None or not settings.api_token.get_secret_value():
        raise ValidationError(
            "no API token is configured: set WORKBENCH_API_TOKEN (clients send it as "
            "'Authorization: Bearer <token>') with --dev-static-token, or pass --no-auth on a "
            "developer machine, or run the Identity service (the default)"
        )
    spec = settings.api_token_tenants.strip()
    tenants = None if spec in {"", "*"} else [t.strip() for t in spec.split(",") if t.strip()]
    return StaticTokenAuthenticator(settings.api_token.get_secret_value(), tenants=tenants)
