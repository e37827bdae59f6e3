"""Identity: the OAuth 2.0 / OpenID Connect provider and the token checks of every service.

- :mod:`.directory`: users, groups, roles, clients, upstream providers (in the system store)
- :mod:`.provider`: the Authlib-based authorization server (grants, endpoints)
- :mod:`.tokens`, :mod:`.keys`: JWT issuing, refresh-token families, RS256 key rotation
- :mod:`.verification`: :class:`JwtVerifier` and the services' :class:`JwtAuthenticator`
- :mod:`.ldap`, :mod:`.upstream`: LDAP / Active Directory and external OIDC logins
- :mod:`.audit`: the per-tenant audit log

Import the submodules you need; this package imports nothing heavy itself.
"""

from workbench.identity.model import (
    API_SCOPE,
    DATA_MODEL_SCOPE,
    OIDC_SCOPES,
    READ_ONLY_SCOPE,
    ROLES,
    SCOPES,
    TENANT_OWNERS,
)

__all__ = [
    "API_SCOPE",
    "DATA_MODEL_SCOPE",
    "OIDC_SCOPES",
    "READ_ONLY_SCOPE",
    "ROLES",
    "SCOPES",
    "TENANT_OWNERS",
]
