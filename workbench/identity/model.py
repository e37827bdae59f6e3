"""What the Identity service knows about: roles, scopes, users, groups, clients.

Roles and scopes are fixed by the platform (the services check them); users, groups and clients
are data kept per tenant by :class:`~workbench.identity.directory.Directory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_SCOPE",
    "DATA_MODEL_SCOPE",
    "MACHINE_CLIENT_SCOPES",
    "OIDC_SCOPES",
    "READ_ONLY_SCOPE",
    "ROLES",
    "SCOPES",
    "TENANT_OWNERS",
    "Client",
    "Group",
    "User",
]

#: every role the platform knows; services map them to operations
ROLES: tuple[str, ...] = (
    "TenantManagement",
    "UserManagement",
    "CommunicationManagement",
    "Development",
    "AdminPanelManagement",
    "BotManagement",
    "DashboardManagement",
    "DashboardViewer",
    "ReportingManagement",
    "ReportingViewer",
    "DataModelManagement",
    "StreamDataAdmin",
    "StreamDataWriter",
    "StreamDataReader",
)

#: the built-in group of every tenant that holds all roles
TENANT_OWNERS = "TenantOwners"

API_SCOPE = "workbench_api"
READ_ONLY_SCOPE = "workbench_api.read_only"
DATA_MODEL_SCOPE = "workbench_api.data_model_management"
OIDC_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "roles", "allowed_tenants")
#: every scope a client may request
SCOPES: tuple[str, ...] = (API_SCOPE, READ_ONLY_SCOPE, DATA_MODEL_SCOPE, *OIDC_SCOPES)
#: the scopes of a new client that acts for itself (client credentials) when none are given:
#: least privilege, it reads; give ``workbench_api`` explicitly to let it change data
MACHINE_CLIENT_SCOPES: tuple[str, ...] = (READ_ONLY_SCOPE,)

#: OAuth grant types a client may be allowed
GRANT_TYPES: tuple[str, ...] = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)


@dataclass
class User:
    """A person (or an upstream identity) of one tenant.

    ``id`` is stable and is the tokens' ``sub``; ``password_hash`` is an argon2 hash or None
    for users that log in through an upstream (LDAP, OIDC) only. ``tenants`` are further tenants
    granted to the user besides its own (children of each are included in ``allowed_tenants``).
    """

    id: str
    tenant_id: str
    username: str
    email: str | None = None
    name: str | None = None
    enabled: bool = True
    password_hash: str | None = None
    roles: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    source: str = "local"
    consents: dict[str, list[str]] = field(default_factory=dict)
    created: str = ""

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenantId": self.tenant_id,
            "username": self.username,
            "email": self.email,
            "name": self.name,
            "enabled": self.enabled,
            "passwordHash": self.password_hash,
            "roles": sorted(self.roles),
            "groups": sorted(self.groups),
            "tenants": sorted(self.tenants),
            "source": self.source,
            "consents": self.consents,
            "created": self.created,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> User:
        return cls(
            id=doc["id"],
            tenant_id=doc["tenantId"],
            username=doc["username"],
            email=doc.get("email"),
            name=doc.get("name"),
            enabled=bool(doc.get("enabled", True)),
            password_hash=doc.get("passwordHash"),
            roles=list(doc.get("roles") or []),
            groups=list(doc.get("groups") or []),
            tenants=list(doc.get("tenants") or []),
            source=doc.get("source", "local"),
            consents=dict(doc.get("consents") or {}),
            created=doc.get("created", ""),
        )

    def public(self) -> dict[str, Any]:
        """The user without secrets (for APIs and the CLI)."""
        doc = self.to_document()
        doc.pop("passwordHash")
        doc.pop("consents")
        doc["hasPassword"] = self.password_hash is not None
        return doc


@dataclass
class Group:
    """A named set of roles in one tenant; groups nest through ``groups`` (member groups
    inherit nothing: a user in a group gets the group's roles and those of its parent groups)."""

    tenant_id: str
    name: str
    roles: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    description: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "name": self.name,
            "roles": sorted(self.roles),
            "parents": sorted(self.parents),
            "description": self.description,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Group:
        return cls(
            tenant_id=doc["tenantId"],
            name=doc["name"],
            roles=list(doc.get("roles") or []),
            parents=list(doc.get("parents") or []),
            description=doc.get("description"),
        )


@dataclass
class Client:
    """An OAuth client registered in a tenant.

    Public clients (``secret_hash`` None: browsers, the CLI, notebooks) must use PKCE;
    confidential ones authenticate with their secret. ``first_party`` clients skip the consent
    page (only platform administrators may set it). A client of a tenant obtains tokens for
    that tenant and its children only; the system tenant's clients serve every tenant.
    ``roles`` are what client-credentials tokens of this client carry; ``generation`` counts
    secret rotations (tokens issued before the current generation are revoked).
    """

    client_id: str
    tenant_id: str
    name: str
    secret_hash: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scopes: list[str] = field(default_factory=lambda: list(SCOPES))
    roles: list[str] = field(default_factory=list)
    first_party: bool = False
    enabled: bool = True
    created: str = ""
    generation: int = 0

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    def to_document(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "tenantId": self.tenant_id,
            "name": self.name,
            "secretHash": self.secret_hash,
            "redirectUris": list(self.redirect_uris),
            "postLogoutRedirectUris": list(self.post_logout_redirect_uris),
            "grantTypes": list(self.grant_types),
            "scopes": list(self.scopes),
            "roles": sorted(self.roles),
            "firstParty": self.first_party,
            "enabled": self.enabled,
            "created": self.created,
            "generation": self.generation,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Client:
        return cls(
            client_id=doc["clientId"],
            tenant_id=doc["tenantId"],
            name=doc.get("name", doc["clientId"]),
            secret_hash=doc.get("secretHash"),
            redirect_uris=list(doc.get("redirectUris") or []),
            post_logout_redirect_uris=list(doc.get("postLogoutRedirectUris") or []),
            grant_types=list(doc.get("grantTypes") or []),
            scopes=list(doc.get("scopes") or []),
            roles=list(doc.get("roles") or []),
            first_party=bool(doc.get("firstParty", False)),
            enabled=bool(doc.get("enabled", True)),
            created=doc.get("created", ""),
            generation=int(doc.get("generation", 0)),
        )

    def info(self) -> dict[str, Any]:
        """The client without its secret hash."""
        doc = self.to_document()
        doc.pop("secretHash")
        doc["public"] = self.public
        return doc
