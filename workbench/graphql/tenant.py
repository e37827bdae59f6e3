"""What the GraphQL layer needs of a tenant: :class:`GraphQLTenant`.

The schema runs in process: beyond the SDK's :class:`~workbench.client.tenant_api.TenantApi`
(which the remote client satisfies too) it needs the runtime service itself, the entity store
(persisted queries), the configuration and the tenant's file area (extension workers).
:class:`workbench.client.local.Tenant` satisfies it; a protocol, so this package does not import
the client that imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.client.tenant_api import TenantApi

if TYPE_CHECKING:
    from workbench.client.tenant_streams import TenantStreams
    from workbench.runtime.service import EntityService
    from workbench.storage.base import EntityStore
    from workbench.streams.service import TypeStreams

__all__ = ["GraphQLTenant"]


class GraphQLTenant(TenantApi, Protocol):
    """An in-process tenant (see the module docstring)."""

    @property
    def entities(self) -> EntityService: ...

    @property
    def streams(self) -> TenantStreams[TypeStreams]: ...

    @property
    def entity_store(self) -> EntityStore: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def home(self) -> Path:
        """The data directory the tenant was opened from."""
        ...

    @property
    def files_dir(self) -> Path:
        """The tenant's file area (embedded databases, notebooks, artifacts)."""
        ...
