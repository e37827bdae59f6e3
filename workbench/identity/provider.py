"""The OAuth 2.0 / OpenID Connect provider, built on Authlib's server grants and endpoints.

Framework-neutral: the web layer (:mod:`workbench.services.identity`) turns an HTTP request into
an :class:`HttpRequest` (method, URL, headers, query and form values) and gets back an
:class:`OAuthResponse` (status, body, headers). Authlib does the protocol checks (client
authentication, exact redirect-URI matching, PKCE, grant validation); this module supplies the
storage (:mod:`.directory`, :mod:`.tokens`) and the token format (:class:`.tokens.TokenIssuer`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant

from workbench.errors import Unauthenticated
from workbench.identity.audit import AuditLog
from workbench.identity.directory import Directory
from workbench.identity.keys import SigningKeys
from workbench.identity.model import API_SCOPE, OIDC_SCOPES, READ_ONLY_SCOPE, SCOPES, Client, User
from workbench.identity.tokens import Grant, Subject, TokenIssuer, TokenStore, new_token
from workbench.identity.verification import JwtVerifier, StaticJwks

__all__ = ["HttpRequest", "OAuthResponse", "Provider", "ProviderConfig"]

log = logging.getLogger("workbench.identity.provider")

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


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


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    audience: str = "workbench-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 120
    device_code_ttl: int = 600
    key_rotation_days: float = 30.0


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

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.client.scopes
        if not scope:
            if API_SCOPE in allowed:
                return API_SCOPE
            return READ_ONLY_SCOPE if READ_ONLY_SCOPE in allowed else ""
        return " ".join(s for s in scope.split() if s in allowed)

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


_ALL_AUTH = ["client_secret_basic", "client_secret_post", "none"]


class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ALL_AUTH
    server: _Server

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
        grant = self.server.provider.tokens.take_code(code)
        if grant is None or grant.client_id != client.get_client_id() or grant.is_expired():
            return None
        return grant

    def delete_authorization_code(self, authorization_code: Grant) -> None:
        pass  # already deleted when it was looked up (single use)

    def authenticate_user(self, authorization_code: Grant) -> Subject | None:
        subject = authorization_code.subject
        return None if subject is None else self.server.provider.refresh_subject(subject)


class _RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ALL_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token
    server: _Server

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
        return None if subject is None else self.server.provider.refresh_subject(subject)

    def revoke_old_credential(self, refresh_token: Grant) -> None:
        self.server.provider.tokens.set_refresh_state(refresh_token, "rotated")


class _ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _DeviceCodeGrant(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ALL_AUTH
    server: _Server

    def query_device_credential(self, device_code: str) -> Grant | None:
        return self.server.provider.tokens.get_device(device_code)

    def query_user_grant(self, user_code: str) -> tuple[Subject, bool] | None:
        grant = self.server.provider.tokens.device_by_user_code(user_code)
        if grant is None or grant.subject is None or grant.state not in ("approved", "denied"):
            return None
        subject = self.server.provider.refresh_subject(grant.subject)
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
    server: _Server

    def get_verification_uri(self) -> str:
        return self.server.provider.config.issuer + "/device"

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


class _TokenLookup:
    server: _Server

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
            if provider.tokens.jti_revoked(str(claims.get("jti", ""))):
                return None
            return _TokenRecord("access_token", str(claims.get("client_id", "")), claims=claims)
        return None


class _RevocationEndpoint(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = _ALL_AUTH

    def revoke_token(self, token: _TokenRecord, request: Any) -> None:
        provider = self.server.provider
        if token.grant is not None:
            if token.grant.family:
                provider.tokens.revoke_family(token.grant.family)
            provider.tokens.set_refresh_state(token.grant, "revoked")
        elif token.claims is not None:
            provider.tokens.revoke_jti(str(token.claims.get("jti")), float(token.claims["exp"]))


class _IntrospectionEndpoint(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def check_permission(self, token: _TokenRecord, client: OAuthClient, request: Any) -> bool:
        return not client.client.public

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


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.provider = provider

    def query_client(self, client_id: str) -> OAuthClient | None:
        client = self.provider.directory.get_client(client_id)
        if client is None or not client.enabled:
            return None
        return OAuthClient(client, self.provider.directory)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        refresh = token.get("refresh_token")
        if not refresh:
            return
        previous = request.refresh_token if isinstance(request.refresh_token, Grant) else None
        grant = Grant(
            kind="refresh",
            client_id=request.client.get_client_id(),
            scope=str(token.get("scope", "")),
            subject=request.user,
            expires_at=time.time() + self.provider.config.refresh_token_ttl,
            family=previous.family if previous is not None else None,
        )
        self.provider.tokens.add_refresh(refresh, grant)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _Request(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthResponse:
        return OAuthResponse(status, body, [(str(k), str(v)) for k, v in headers])


class Provider:
    """The identity provider: directory, keys, grants and Authlib's protocol machinery."""

    def __init__(
        self,
        directory: Directory,
        config: ProviderConfig,
        *,
        audit: AuditLog | None = None,
        manage_keys: bool = True,
    ) -> None:
        """``manage_keys=False`` (tools beside a running service) never creates or rotates
        signing keys: the service owns them."""
        self.directory = directory
        self.config = config
        self.audit = audit or directory.audit
        self.keys = SigningKeys(directory.store)
        if manage_keys:
            self.keys.ensure(config.key_rotation_days)
        elif not self.keys.public_keys():
            from workbench.errors import NotFound

            raise NotFound(
                "there is no signing key yet: start the Identity service once "
                "(workbench serve identity) to create it"
            )
        self.tokens = TokenStore(directory.store)
        self.issuer = TokenIssuer(
            self.keys, config.issuer, config.audience, access_ttl=config.access_token_ttl
        )
        self.verifier = JwtVerifier(
            config.issuer,
            config.audience,
            StaticJwks(self.keys.public_keys),
            refetch_interval=0.0,
            leeway=5.0,
        )
        server = _Server(self)
        server.register_token_generator("default", self._generate_token)
        server.register_grant(_AuthorizationCodeGrant, [CodeChallenge(required=True)])
        server.register_grant(_RefreshTokenGrant)
        server.register_grant(_ClientCredentialsGrant)
        server.register_grant(_DeviceCodeGrant)
        server.register_endpoint(_DeviceAuthorizationEndpoint)
        server.register_endpoint(_RevocationEndpoint)
        server.register_endpoint(_IntrospectionEndpoint)
        self.server = server

    # ------------------------------------------------------------- subjects

    def subject_for(
        self,
        user: User,
        tenant_id: str | None = None,
        *,
        nonce: str | None = None,
        auth_time: int | None = None,
    ) -> Subject:
        """The token subject for ``user`` working in ``tenant_id`` (default: its own tenant);
        :class:`~workbench.errors.Forbidden` when the user may not use that tenant."""
        from workbench.errors import Forbidden

        allowed = self.directory.user_tenants(user)
        tenant = tenant_id or user.tenant_id
        if tenant not in allowed:
            raise Forbidden(
                f"user {user.username!r} may not use tenant {tenant!r}; ask an administrator "
                "to grant it"
            )
        return Subject(
            sub=user.id,
            tenant_id=tenant,
            allowed_tenants=allowed,
            roles=self.directory.effective_roles(user),
            username=user.username,
            email=user.email,
            name=user.name,
            nonce=nonce,
            auth_time=auth_time,
        )

    def client_subject(self, client: Client) -> Subject:
        return Subject(
            sub=f"client:{client.client_id}",
            tenant_id=client.tenant_id,
            allowed_tenants=self.directory.allowed_tenants(client.tenant_id),
            roles=sorted(client.roles),
            username=None,
            client_only=True,
        )

    def refresh_subject(self, subject: Subject) -> Subject | None:
        """``subject`` with current roles and tenants (None when the user is gone, disabled,
        or lost the tenant): role changes apply at the next refresh."""
        if subject.client_only:
            return subject
        user = self.directory.user_by_id(subject.sub)
        if user is None or not user.enabled:
            return None
        allowed = self.directory.user_tenants(user)
        if subject.tenant_id not in allowed:
            return None
        return Subject(
            sub=user.id,
            tenant_id=subject.tenant_id,
            allowed_tenants=allowed,
            roles=self.directory.effective_roles(user),
            username=user.username,
            email=user.email,
            name=user.name,
            nonce=subject.nonce,
            auth_time=subject.auth_time,
        )

    # ------------------------------------------------------------- tokens

    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        subject = user if user is not None else self.client_subject(client.client)
        granted = client.get_allowed_scope(scope)
        access, lifetime = self.issuer.access_token(
            subject, client.get_client_id(), granted, expires_in
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": lifetime,
            "scope": granted,
        }
        if (
            include_refresh_token
            and user is not None
            and "refresh_token" in client.client.grant_types
        ):
            token["refresh_token"] = new_token()
        if user is not None and "openid" in granted.split() and grant_type != "client_credentials":
            token["id_token"] = self.issuer.id_token(
                subject, client.get_client_id(), granted, access
            )
        return token

    def client_credentials_token(self, client_id: str) -> dict[str, Any]:
        """A client-credentials token issued in-process (``workbench token --client``)."""
        client = self.directory.require_client(client_id)
        if "client_credentials" not in client.grant_types:
            from workbench.errors import ValidationError

            raise ValidationError(
                f"client {client_id!r} may not use client_credentials; register it with that "
                "grant type"
            )
        return self._generate_token(
            "client_credentials", OAuthClient(client, self.directory), None, None, None, False
        )

    # ------------------------------------------------------------- audit

    def audit_event(self, grant: Grant, action: str, message: str) -> None:
        if self.audit is None:
            return
        tenant = grant.subject.tenant_id if grant.subject else "system"
        try:
            self.audit.record(
                tenant,
                actor=grant.subject.sub if grant.subject else f"client:{grant.client_id}",
                action=action,
                target=grant.client_id,
                details={"message": message},
            )
        except Exception:  # auditing must not turn a refused request into a 500
            log.exception("could not write audit entry %s", action)

    # ------------------------------------------------------------- protocol entry points

    def token_response(self, request: HttpRequest) -> OAuthResponse:
        result: OAuthResponse = self.server.create_token_response(request)
        return result

    def endpoint_response(self, name: str, request: HttpRequest) -> OAuthResponse:
        result: OAuthResponse = self.server.create_endpoint_response(name, request)
        return result

    def discovery(self) -> dict[str, Any]:
        issuer = self.config.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "device_authorization_endpoint": f"{issuer}/device_authorization",
            "end_session_endpoint": f"{issuer}/end-session",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                DEVICE_GRANT,
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": _ALL_AUTH,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "name",
                "email",
                "preferred_username",
                "roles",
                "tenant_id",
                "allowed_tenants",
            ],
            "acr_values_supported": ["tenant:<tenant id>"],
        }

    def oidc_scopes(self) -> tuple[str, ...]:
        return OIDC_SCOPES
