"""What every tenant of the SDK offers, in process and remote: :class:`TenantApi`.

:class:`~workbench.client.local.Tenant` (``workbench.open``) and
:class:`~workbench.client.remote.RemoteTenant` (``workbench.connect``) both satisfy it, and
mypy checks that they do (each client module assigns its class to a ``type[TenantApi]``), so
the two clients cannot drift apart. Code that works on either kind of tenant types against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.runtime.query_arguments import (
    AggregateArguments,
    FindArguments,
    aggregate_keywords,
    find_keywords,
)

if TYPE_CHECKING:
    from workbench.ck.model import CkLibrary, CkModel
    from workbench.client.tenant_queries import TenantQueries
    from workbench.client.tenant_streams import TenantStreams
    from workbench.runtime.entity import Entity, EntityPage, EntityWrites
    from workbench.tenancy.catalog import ImportReport

__all__ = ["CatalogApi", "EntityReads", "TenantApi"]


class CatalogApi(Protocol):
    """A tenant's Construction Kit catalog: its libraries and the model they resolve to."""

    def stamp(self) -> tuple[int, ...]: ...

    def generation(self) -> int: ...

    def model(self) -> CkModel: ...

    def libraries(self) -> dict[str, CkLibrary]: ...

    def own_libraries(self) -> dict[str, CkLibrary]: ...

    def export_library(self, name: str) -> dict[str, Any]: ...

    def validate(self, source: Path | CkLibrary) -> CkModel: ...

    def import_library(self, source: Path | CkLibrary) -> ImportReport: ...


class EntityReads(Protocol):
    """The entity reads of ``tenant.entities`` in process (``EntityService``) and remote
    (``RemoteEntityService``); each module assigns its class to a ``type[EntityReads]``."""

    def get(self, rt_id: str, *, include_archived: bool = False) -> Entity: ...

    def get_many(
        self, rt_ids: Sequence[str], *, include_archived: bool = False
    ) -> dict[str, Entity]: ...

    def get_by_well_known_name(self, name: str) -> Entity: ...

    def entity_types(self, rt_ids: Sequence[str]) -> dict[str, str]: ...

    @find_keywords
    def find(self, arguments: FindArguments) -> EntityPage: ...

    def count(self, ck_type_id: str, *, where: Iterable[Any] = ()) -> int: ...

    @aggregate_keywords
    def aggregate(self, arguments: AggregateArguments) -> Any: ...


class TenantApi(Protocol):
    """One tenant: ``ck``, ``model``, ``entities``, ``streams``, ``queries``, ``graphql``."""

    @property
    def id(self) -> str: ...

    @property
    def ck(self) -> CatalogApi: ...

    @property
    def model(self) -> CkModel: ...

    @property
    def entities(self) -> EntityWrites: ...

    @property
    def streams(self) -> TenantStreams[Any]: ...

    @property
    def queries(self) -> TenantQueries: ...

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        raw: bool = False,
    ) -> Any: ...

    def close(self) -> None: ...
