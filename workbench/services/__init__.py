"""Web services (FastAPI). Only this package and :mod:`workbench.graphql` import web frameworks.

- :mod:`.asset_repository`: per-tenant GraphQL, REST bulk endpoints (``create_app``, ``serve``)
- :mod:`.auth`: the authenticator port (static token, no-auth; JWT plugs in later)
"""

from workbench.services.asset_repository import AssetRepository, create_app, serve
from workbench.services.auth import (
    Authenticator,
    NoAuthAuthenticator,
    Principal,
    StaticTokenAuthenticator,
)

__all__ = [
    "AssetRepository",
    "Authenticator",
    "NoAuthAuthenticator",
    "Principal",
    "StaticTokenAuthenticator",
    "create_app",
    "serve",
]
