"""JupyterHub plug-ins: login through the Identity service and a tenant-aware spawner.

- :mod:`.authenticator`: :class:`WorkbenchAuthenticator`, oauthenticator's
  ``GenericOAuthenticator`` against the Identity service (authorization code + PKCE, tokens in
  ``auth_state``, refreshed before they expire, hub admins from a role)
- :mod:`.spawner`: :class:`TenantSpawner`, a local-process spawner whose servers work on one of
  the user's ``allowed_tenants``

Both import JupyterHub (the ``hub`` extra): import the submodules, this package imports nothing.
``hub_config/jupyterhub_config.py`` wires them from the project's settings.
"""

__all__: list[str] = []
