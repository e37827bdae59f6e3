"""Web services (FastAPI). Only this package and :mod:`workbench.graphql` import web frameworks.

- :mod:`.asset_repository`, :mod:`.identity`, :mod:`.communication_controller`,
  :mod:`.bot_service`, :mod:`.admin`: one package per service (its `app` module assembles it)
- :mod:`.app`: the skeleton every service is built on
- :mod:`.auth`: the authenticator port (JWT, static token, no-auth)
"""

from workbench.services.asset_repository.app import AssetRepository, create_app, serve
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
