"""Storage ports: the contracts every backend adapter implements.

An adapter is a class registered by URL scheme in :mod:`workbench.storage.registry`. It must pass
the contract suite for its port in :mod:`workbench.testing` unchanged. Adapters translate driver
exceptions into :mod:`workbench.errors` at their boundary.

The entity store keeps, per tenant, the runtime entities, their associations and a small "meta"
area of JSON documents by ``(namespace, key)`` (imported CK libraries, migration history, the
tenant registry in the system tenant). It knows nothing about the CK model beyond the index specs
it is given: validation belongs to :mod:`workbench.runtime`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from workbench.query.model import EntityQuery, Page, Path

__all__ = [
    "EntityStore",
    "IndexSpec",
    "MetaWrite",
    "StoredAssociation",
    "StoredEntity",
    "WriteBatch",
]


@dataclass
class StoredEntity:
    """An entity as stored: system fields plus ``attributes`` keyed by attribute name.

    Attribute values are plain JSON-like values (str, int, float, bool, None, list, dict) and
    timezone-aware ``datetime``; records are nested dicts keyed by their attribute names.
    ``archived`` entities are hidden from queries unless asked for.
    """

    rt_id: str
    ck_type_id: str
    attributes: dict[str, Any]
    rt_version: int
    rt_creation_datetime: datetime
    rt_changed_datetime: datetime
    rt_well_known_name: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class StoredAssociation:
    """A directed link ``source --role--> target``."""

    role_id: str
    source_rt_id: str
    source_ck_type_id: str
    target_rt_id: str
    target_ck_type_id: str


@dataclass(frozen=True)
class MetaWrite:
    """Put (``document`` set) or delete (``document is None``) one meta document."""

    namespace: str
    key: str
    document: dict[str, Any] | None


@dataclass
class WriteBatch:
    """Changes applied together by :meth:`EntityStore.apply`: all of them or none.

    - ``inserts``: new entities; an existing ``rt_id`` is a :class:`~workbench.errors.Conflict`.
    - ``updates``: full replacements as ``(entity, expected_version)``; the stored entity must
      exist and, when ``expected_version`` is not None, have that ``rt_version`` (else Conflict).
      The caller sets the new ``rt_version``.
    - ``erase``: rtIds removed for good, with every association that touches them.
    - ``add_associations`` / ``remove_associations``: links; adding an existing link is a no-op.
    - ``meta``: meta documents put or deleted.
    Unique indexes and ``rtWellKnownName`` uniqueness (among non-archived entities) are checked
    against the state after the whole batch; a violation is a Conflict naming the value.
    """

    inserts: list[StoredEntity] = field(default_factory=list)
    updates: list[tuple[StoredEntity, int | None]] = field(default_factory=list)
    erase: list[str] = field(default_factory=list)
    add_associations: list[StoredAssociation] = field(default_factory=list)
    remove_associations: list[StoredAssociation] = field(default_factory=list)
    meta: list[MetaWrite] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.inserts
            or self.updates
            or self.erase
            or self.add_associations
            or self.remove_associations
            or self.meta
        )


@dataclass(frozen=True)
class IndexSpec:
    """An index derived from the CK model.

    ``type_ids`` are the types it covers (the declaring type and its subtypes); ``paths`` are
    storage paths (``("attributes", "SerialNumber")``). ``kind`` ``unique`` rejects duplicates
    among all entities of those types, ``unique_not_deleted`` among non-archived ones only;
    ``text`` supports text search; ``ascending`` is a plain index. ``name`` is stable and unique.
    """

    name: str
    kind: Literal["ascending", "text", "unique", "unique_not_deleted"]
    type_ids: tuple[str, ...]
    paths: tuple[Path, ...]


class EntityStore(ABC):
    """Port for a tenant's entity database (SQLite embedded, MongoDB in production)."""

    #: the URL the store was opened with (credentials removed)
    url: str

    @abstractmethod
    def supports_transactions(self) -> bool:
        """True when :meth:`apply` runs in a server transaction; False when the adapter validates
        the whole batch first and undoes a partial write on failure (best effort under crashes)."""

    @abstractmethod
    def apply(self, batch: WriteBatch) -> None:
        """Apply every change of ``batch`` atomically (see :class:`WriteBatch`)."""

    @abstractmethod
    def get_many(self, rt_ids: Sequence[str], include_archived: bool = True) -> dict[str, StoredEntity]:
        """The entities with these ids that exist, by rtId (one round trip)."""

    @abstractmethod
    def get_by_well_known_name(self, name: str) -> StoredEntity | None:
        """The non-archived entity whose ``rtWellKnownName`` is ``name``."""

    @abstractmethod
    def find(self, query: EntityQuery) -> Page[StoredEntity]:
        """One page of entities matching ``query`` (keyset paging, see :class:`EntityQuery`)."""

    @abstractmethod
    def count(self, query: EntityQuery) -> int:
        """The number of entities matching ``query`` (ignores paging)."""

    @abstractmethod
    def associations(
        self,
        rt_ids: Sequence[str],
        direction: Literal["outbound", "inbound"],
        role_id: str | None = None,
    ) -> list[StoredAssociation]:
        """Links whose source (``outbound``) or target (``inbound``) is in ``rt_ids``, in one
        round trip, optionally of one role only."""

    @abstractmethod
    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        """Create the given indexes and drop model indexes no longer listed (idempotent).

        Raises Conflict when existing data violates a new unique index (nothing is changed)."""

    @abstractmethod
    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Every document of ``namespace`` by key."""

    @abstractmethod
    def drop(self) -> None:
        """Delete every piece of data of this store (the tenant's database) and close it."""

    @abstractmethod
    def close(self) -> None: ...

    def put_meta(self, namespace: str, key: str, document: dict[str, Any] | None) -> None:
        """Put (or with ``None`` delete) one meta document."""
        self.apply(WriteBatch(meta=[MetaWrite(namespace, key, document)]))

    def __enter__(self) -> EntityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
