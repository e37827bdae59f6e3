"""The OAuth 2.0 / OpenID Connect provider, built on Authlib's server grants and endpoints.

Framework-neutral: the web layer (:mod:`workbench.services.identity.app`) turns an HTTP request into
an :class:`HttpRequest` (method, URL, headers, query and form values) and gets back an
:class:`OAuthResponse` (status, body, headers). The grants and endpoints are in
:mod:`.authorization_server`; this module supplies the storage (:mod:`.directory`,
:mod:`.tokens`), the token format (:class:`.tokens.TokenIssuer`) and whom a token is for: a
tenant's client obtains tokens for that tenant and its children only (whoever signs in), the
system tenant's clients for every tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidScopeError

from workbench.identity.audit import AuditLog
from workbench.identity.authorization_server import (
    ALL_AUTH_METHODS,
    HttpRequest,
    OAuthClient,
    OAuthResponse,
    OAuthServer,
)
from workbench.identity.directory import Directory
from workbench.identity.keys import SigningKeys
from workbench.identity.model import OIDC_SCOPES, SCOPES, Client, User
from workbench.identity.provider_config import ProviderConfig
from workbench.identity.tokens import Grant, Subject, TokenIssuer, TokenStore, new_token
from workbench.identity.verification import JwtVerifier, StaticJwks
from workbench.tenancy.ids import SYSTEM_TENANT

__all__ = ["HttpRequest", "OAuthResponse", "Provider", "ProviderConfig"]

log = logging.getLogger("workbench.identity.provider")

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


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
        self.server = OAuthServer(self)

    # ------------------------------------------------------------- which tenants a client serves

    def client_serves(self, client: Client, tenant_id: str) -> bool:
        """Whether ``client`` may obtain tokens for ``tenant_id``: a system-tenant client (the
        hub, the playground, the Admin Panel) serves every tenant, any other client its own
        tenant and that tenant's children, whoever signs in through it."""
        if client.tenant_id == SYSTEM_TENANT:
            return True
        return tenant_id in self.directory.allowed_tenants(client.tenant_id)

    def served_tenants(self, client: Client | None, tenants: Iterable[str]) -> list[str]:
        """``tenants`` narrowed to those ``client`` serves (all of them without a client)."""
        if client is None or client.tenant_id == SYSTEM_TENANT:
            return list(tenants)
        served = set(self.directory.allowed_tenants(client.tenant_id))
        return [t for t in tenants if t in served]

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

    def refresh_subject(self, subject: Subject, client: Client | None = None) -> Subject | None:
        """``subject`` with current roles and tenants (None when the user is gone, disabled,
        or lost the tenant, or when ``client`` does not serve the tenant): role changes apply
        at the next refresh. The token's ``allowed_tenants`` are those ``client`` serves."""
        if subject.client_only:
            return subject
        user = self.directory.user_by_id(subject.sub)
        if user is None or not user.enabled:
            return None
        allowed = self.served_tenants(client, self.directory.user_tenants(user))
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

    def generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """The token response of one grant (Authlib's token generator)."""
        subject = user if user is not None else self.client_subject(client.client)
        granted = client.get_allowed_scope(scope)
        if granted is None:  # the client's scopes were narrowed since the grant
            raise InvalidScopeError(f"client {client.client_id!r} may no longer use {scope!r}")
        access, lifetime = self.issuer.access_token(
            subject,
            client.get_client_id(),
            granted,
            expires_in,
            client_generation=client.client.generation,
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
        return self.generate_token(
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
            "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
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
            # acr_values=tenant:<id> selects the token's tenant
            "acr_values_supported": [f"tenant:{t}" for t in self.tenant_ids()],
        }

    def tenant_ids(self) -> list[str]:
        """The system tenant and every tenant of the registry."""
        return [
            SYSTEM_TENANT,
            *(r.id for r in self.directory.registry.list() if r.id != SYSTEM_TENANT),
        ]

    def oidc_scopes(self) -> tuple[str, ...]:
        return OIDC_SCOPES
