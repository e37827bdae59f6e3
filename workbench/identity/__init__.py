"""Identity: the OAuth 2.0 / OpenID Connect provider and the token checks of every service.

- :mod:`.directory` (clients in :mod:`.clients`): users, groups, roles, clients, upstream
  providers (in the system store)
- :mod:`.provider`: the identity provider (whom tokens are for, discovery); its Authlib grants
  and endpoints are in :mod:`.authorization_server`
- :mod:`.tokens`, :mod:`.keys`: JWT issuing, refresh-token families, RS256 key rotation
- :mod:`.revocation`: the revocation list and the services' polled copy of it
- :mod:`.throttle`: failed-login throttling per account and per address
- :mod:`.verification`: :class:`JwtVerifier`
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
