"""Authlib's authorization server with the platform's grants and endpoints.

The web layer turns an HTTP request into an :class:`HttpRequest` and gets back an
:class:`OAuthResponse`; :class:`OAuthServer` runs the grants (authorization code with PKCE,
refresh token with rotation and reuse detection, client credentials, device code) and the
revocation, introspection and device-authorization endpoints over the storage of
:class:`~.provider.Provider`. Authlib does the protocol checks (client authentication, exact
redirect-URI matching, PKCE, grant validation); the rules of this platform sit here: a client
requests only its allowed scopes (else ``invalid_scope``), a public client must use PKCE with
S256, a code presented twice revokes its first tokens, and a client introspects only tokens of
the tenants it serves.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant

from workbench.errors import Unauthenticated
from workbench.identity.directory import Directory
from workbench.identity.model import API_SCOPE, READ_ONLY_SCOPE, SCOPES, Client
from workbench.identity.provider_config import ProviderConfig
from workbench.identity.tokens import Grant, Subject, TokenStore, unverified_claims
from workbench.identity.verification import JwtVerifier

__all__ = [
    "ALL_AUTH_METHODS",
    "HttpRequest",
    "OAuthClient",
    "OAuthResponse",
    "OAuthServer",
    "TokenProvider",
    "check_client_scope",
]

log = logging.getLogger("workbench.identity.provider")


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the provider needs it (built by the web layer)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, list[str]] = field(default_factory=dict)
    form: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthResponse:
    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None


class TokenProvider(Protocol):
    """What the grants need of :class:`workbench.identity.provider.Provider` (a protocol, so
    this module does not import the provider that imports it)."""

    @property
    def config(self) -> ProviderConfig: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def verifier(self) -> JwtVerifier: ...

    def client_serves(self, client: Client, tenant_id: str) -> bool: ...

    def refresh_subject(self, subject: Subject, client: Client | None = None) -> Subject | None: ...

    def generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]: ...

    def audit_event(self, grant: Grant, action: str, message: str) -> None: ...


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        merged: defaultdict[str, list[str]] = defaultdict(list)
        for source in (request.query, request.form):
            for key, values in source.items():
                merged[key].extend(values)
        self._datalist = merged
        self._data = {key: values[0] for key, values in merged.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Headers(dict[str, str]):
    """Case-insensitive header lookup (Authlib asks for ``Authorization``; ASGI servers give
    lower-case names)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((k.lower(), v) for k, v in headers.items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.url, headers=_Headers(request.headers))
        self.payload = _Payload(request)
        self._http = request

    @property
    def args(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._http.query.items() if v}

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._http.form.items() if v}


class OAuthClient:
    """A :class:`~.model.Client` with Authlib's client interface."""

    def __init__(self, client: Client, directory: Directory) -> None:
        self.client = client
        self.client_id = client.client_id
        self._directory = directory

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        # only an unambiguous default: with several URIs the request must name one exactly
        uris = self.client.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope to grant: the client's default when none is asked for, None (Authlib:
        invalid_scope) when a requested scope is not allowed to this client."""
        allowed = self.client.scopes
        if not scope:
            if API_SCOPE in allowed:
                return API_SCOPE
            return READ_ONLY_SCOPE if READ_ONLY_SCOPE in allowed else ""
        if disallowed_scopes(self.client, scope):
            return None
        return " ".join(scope.split())

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact match, nothing else

    def check_client_secret(self, client_secret: str) -> bool:
        return self._directory.check_client_secret(self.client, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if not self.client.enabled:
            return False
        if self.client.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.client.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def disallowed_scopes(client: Client, scope: str | None) -> list[str]:
    """The scopes of ``scope`` that ``client`` may not request."""
    return [s for s in (scope or "").split() if s not in client.scopes]


def check_client_scope(client: OAuthClient, scope: str | None) -> None:
    """Raise invalid_scope when ``scope`` asks for more than ``client`` may have (RFC 6749
    section 5.2: refuse, do not quietly grant less)."""
    refused = disallowed_scopes(client.client, scope)
    if refused:
        raise InvalidScopeError(
            f"client {client.client_id!r} may not request {' '.join(refused)!r}; it may "
            f"request {' '.join(client.client.scopes) or 'no scope'}"
        )


class _ClientScopes:
    """Grant mixin: the requested scope must be one the client is allowed."""

    request: Any
    server: Any

    def validate_requested_scope(self) -> None:
        self.server.validate_requested_scope(self.request.payload.scope)
        check_client_scope(self.request.client, self.request.payload.scope)


class _AuthorizationCodeGrant(_ClientScopes, grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: OAuthServer

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data = self.request.payload.data
        client: OAuthClient = self.request.client
        if client.client.public and not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required for public clients: send code_challenge "
                "(and code_challenge_method=S256)",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        if data.get("code_challenge") and data.get("code_challenge_method", "plain") != "S256":
            raise InvalidRequestError(
                "only code_challenge_method=S256 is accepted",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        grant = Grant(
            kind="code",
            client_id=request.client.get_client_id(),
            scope=request.scope or "",
            subject=request.user,
            expires_at=time.time() + self.server.provider.config.code_ttl,
            redirect_uri=request.payload.redirect_uri,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )
        self.server.provider.tokens.add_code(code, grant)

    def query_authorization_code(self, code: str, client: OAuthClient) -> Grant | None:
        # a code presented twice: None, and the first exchange's tokens are revoked
        grant = self.server.provider.tokens.take_code(code)
        if grant is None or grant.client_id != client.get_client_id() or grant.is_expired():
            return None
        return grant

    def delete_authorization_code(self, authorization_code: Grant) -> None:
        pass  # already marked used when it was looked up (single use)

    def authenticate_user(self, authorization_code: Grant) -> Subject | None:
        subject = authorization_code.subject
        client = self.request.client.client
        return None if subject is None else self.server.provider.refresh_subject(subject, client)


class _RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token
    server: OAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> Grant | None:
        provider = self.server.provider
        with provider.tokens.lock:
            grant = provider.tokens.get_refresh(refresh_token)
            if grant is None:
                return None
            if grant.state != "active":
                # reuse of a rotated or revoked token: someone holds a copy; end the family
                if grant.family:
                    provider.tokens.revoke_family(grant.family)
                provider.audit_event(
                    grant,
                    "token.refresh-reuse",
                    "a rotated or revoked refresh token was presented again; its family is revoked",
                )
                log.warning("refresh token reuse detected; family %s revoked", grant.family)
                return None
            if grant.is_expired() or grant.client_id != self.request.client.get_client_id():
                return None
            return grant

    def authenticate_user(self, refresh_token: Grant) -> Subject | None:
        subject = refresh_token.subject
        client = self.request.client.client
        return None if subject is None else self.server.provider.refresh_subject(subject, client)

    def revoke_old_credential(self, refresh_token: Grant) -> None:
        self.server.provider.tokens.set_refresh_state(refresh_token, "rotated")


class _ClientCredentialsGrant(_ClientScopes, grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _DeviceCodeGrant(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: OAuthServer

    def query_device_credential(self, device_code: str) -> Grant | None:
        return self.server.provider.tokens.get_device(device_code)

    def query_user_grant(self, user_code: str) -> tuple[Subject, bool] | None:
        grant = self.server.provider.tokens.device_by_user_code(user_code)
        if grant is None or grant.subject is None or grant.state not in ("approved", "denied"):
            return None
        client = self.server.provider.directory.get_client(grant.client_id)
        subject = self.server.provider.refresh_subject(grant.subject, client)
        if subject is None:
            return None
        return subject, grant.state == "approved"

    def should_slow_down(self, credential: Grant) -> bool:
        return False

    def create_token_response(self) -> Any:
        result = super().create_token_response()
        self.server.provider.tokens.delete_device(self.request.credential)  # one token per code
        return result


class _DeviceAuthorizationEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    server: OAuthServer

    def get_verification_uri(self) -> str:
        return self.server.provider.config.issuer + "/device"

    def authenticate_client(self, request: Any) -> OAuthClient:
        client: OAuthClient = super().authenticate_client(request)
        check_client_scope(client, request.payload.scope)
        return client

    def save_device_credential(
        self, client_id: str, scope: str | None, data: dict[str, Any]
    ) -> None:
        provider = self.server.provider
        grant = Grant(
            kind="device",
            client_id=client_id,
            scope=scope or "",
            subject=None,
            expires_at=time.time() + int(data["expires_in"]),
            user_code=str(data["user_code"]).upper(),
            state="pending",
        )
        provider.tokens.add_device(str(data["device_code"]), grant)


@dataclass
class _TokenRecord:
    """An access token (verified JWT) or refresh token, for revocation and introspection."""

    kind: str
    client_id: str
    claims: dict[str, Any] | None = None
    grant: Grant | None = None

    def check_client(self, client: OAuthClient) -> bool:
        return self.client_id == client.get_client_id()

    def get_client_id(self) -> str:
        return self.client_id

    def is_expired(self) -> bool:
        if self.grant is not None:
            return self.grant.is_expired()
        return bool(self.claims and time.time() > float(self.claims.get("exp", 0)))

    def is_revoked(self) -> bool:
        return self.grant is not None and self.grant.state != "active"

    def tenant_id(self) -> str:
        if self.claims is not None:
            return str(self.claims.get("tenant_id", ""))
        subject = self.grant.subject if self.grant is not None else None
        return subject.tenant_id if subject is not None else ""


class _TokenLookup:
    server: OAuthServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> _TokenRecord | None:
        provider = self.server.provider
        if token_type_hint != "access_token":
            grant = provider.tokens.get_refresh(token_string)
            if grant is not None:
                return _TokenRecord("refresh_token", grant.client_id, grant=grant)
        if token_type_hint != "refresh_token" or token_string.count(".") == 2:
            try:
                claims = provider.verifier.verify(token_string)
            except Unauthenticated:
                return None
            if provider.tokens.revoked(claims):
                return None
            return _TokenRecord("access_token", str(claims.get("client_id", "")), claims=claims)
        return None


class _RevocationEndpoint(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def revoke_token(self, token: _TokenRecord, request: Any) -> None:
        provider = self.server.provider
        if token.grant is not None:
            if token.grant.family:
                provider.tokens.revoke_family(token.grant.family)
            provider.tokens.set_refresh_state(token.grant, "revoked")
        elif token.claims is not None:
            jti, expires_at = str(token.claims.get("jti")), float(token.claims["exp"])
            provider.tokens.revocations.revoke_token(jti, expires_at)


class _IntrospectionEndpoint(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def check_permission(self, token: _TokenRecord, client: OAuthClient, request: Any) -> bool:
        """Confidential clients only, and only for tokens of a tenant the client serves: a
        system-tenant client (a resource server) introspects every token, a tenant's client
        those of its tenant and its children (others read ``{"active": false}``)."""
        if client.client.public:
            return False
        return self.server.provider.client_serves(client.client, token.tenant_id())

    def introspect_token(self, token: _TokenRecord) -> dict[str, Any]:
        if token.claims is not None:
            claims = token.claims
            return {
                "active": True,
                "token_type": "Bearer",
                **{
                    k: claims[k]
                    for k in (
                        "scope",
                        "client_id",
                        "sub",
                        "exp",
                        "iat",
                        "iss",
                        "aud",
                        "tenant_id",
                        "allowed_tenants",
                        "roles",
                        "jti",
                    )
                    if k in claims
                },
            }
        grant = token.grant
        assert grant is not None
        info: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "exp": int(grant.expires_at),
            "iat": int(grant.created),
            "iss": self.server.provider.config.issuer,
        }
        if grant.subject is not None:
            info["sub"] = grant.subject.sub
            info["tenant_id"] = grant.subject.tenant_id
        return info


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """The authorization server of one :class:`~.provider.Provider`."""

    def __init__(self, provider: TokenProvider) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.provider = provider
        self.register_token_generator("default", provider.generate_token)
        self.register_grant(_AuthorizationCodeGrant, [CodeChallenge(required=True)])
        self.register_grant(_RefreshTokenGrant)
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_DeviceCodeGrant)
        self.register_endpoint(_DeviceAuthorizationEndpoint)
        self.register_endpoint(_RevocationEndpoint)
        self.register_endpoint(_IntrospectionEndpoint)

    def query_client(self, client_id: str) -> OAuthClient | None:
        client = self.provider.directory.get_client(client_id)
        if client is None or not client.enabled:
            return None
        return OAuthClient(client, self.provider.directory)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store the refresh token (with the access token issued beside it, revoked with its
        family) and what an authorization code was exchanged for."""
        claims = unverified_claims(str(token["access_token"]))
        access = (str(claims["jti"]), float(claims["exp"]))
        family: str | None = None
        refresh = token.get("refresh_token")
        if refresh:
            previous = request.refresh_token if isinstance(request.refresh_token, Grant) else None
            grant = Grant(
                kind="refresh",
                client_id=request.client.get_client_id(),
                scope=str(token.get("scope", "")),
                subject=request.user,
                expires_at=time.time() + self.provider.config.refresh_token_ttl,
                family=previous.family if previous is not None else None,
            )
            self.provider.tokens.add_refresh(refresh, grant, access)
            family = grant.family
        code = getattr(request, "authorization_code", None)
        if isinstance(code, Grant):
            self.provider.tokens.record_exchange(code.key, access, family)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _Request(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthResponse:
        return OAuthResponse(status, body, [(str(k), str(v)) for k, v in headers])
