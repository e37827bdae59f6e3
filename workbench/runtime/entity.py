"""What the runtime service hands out and takes in: entities, pages, inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AssociationInput",
    "Entity",
    "EntityInput",
    "EntityPage",
    "EntityUpdate",
    "EntityWrites",
]


@dataclass
class Entity:
    """A runtime entity as users see it: attribute values keyed by GraphQL field names
    (``serialNumber``), enums by name, datetimes as ISO 8601 strings in UTC (``...Z``)."""

    rt_id: str
    ck_type_id: str
    rt_version: int
    rt_creation_datetime: datetime
    rt_changed_datetime: datetime
    attributes: dict[str, Any]
    rt_well_known_name: str | None = None
    archived: bool = False

    def __getitem__(self, name: str) -> Any:
        return self.attributes[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: system fields first, then the attributes."""
        out: dict[str, Any] = {
            "rtId": self.rt_id,
            "ckTypeId": self.ck_type_id,
            "rtWellKnownName": self.rt_well_known_name,
            "rtVersion": self.rt_version,
            "rtCreationDateTime": self.rt_creation_datetime.isoformat(),
            "rtChangedDateTime": self.rt_changed_datetime.isoformat(),
        }
        if self.archived:
            out["archived"] = True
        out.update(self.attributes)
        return out


@dataclass
class EntityPage:
    """One page of a query; ``end_cursor`` goes into ``after=`` for the next page."""

    items: list[Entity]
    has_next_page: bool
    end_cursor: str | None
    total_count: int | None = None
    cursors: list[str] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "items": [e.to_dict() for e in self.items],
            "pageInfo": {"hasNextPage": self.has_next_page, "endCursor": self.end_cursor},
        }
        if self.total_count is not None:
            out["totalCount"] = self.total_count
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per entity, one column per system field and attribute, indexed by rtId."""
        import pandas as pd

        rows = []
        for e in self.items:
            row: dict[str, Any] = {
                "rtId": e.rt_id,
                "ckTypeId": e.ck_type_id,
                "rtWellKnownName": e.rt_well_known_name,
                "rtVersion": e.rt_version,
                "rtCreationDateTime": e.rt_creation_datetime,
                "rtChangedDateTime": e.rt_changed_datetime,
            }
            row.update(e.attributes)
            rows.append(row)
        frame = pd.DataFrame(rows)
        if not rows:
            frame = pd.DataFrame(columns=["rtId", "ckTypeId", "rtWellKnownName", "rtVersion"])
        return frame.set_index("rtId")


@dataclass(frozen=True)
class AssociationInput:
    """A link to make from the entity: ``role`` is a role id (``System/ParentChild``) or the
    outbound name on the entity's type (``parent``)."""

    role: str
    target_rt_id: str
    target_ck_type_id: str | None = None


@dataclass
class EntityInput:
    """An entity to create. ``attributes`` are keyed by name (``serialNumber``/``SerialNumber``)
    or, with ``keyed_by="id"``, by full attribute id (``Demo.Energy/SerialNumber``)."""

    ck_type_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    rt_id: str | None = None
    rt_well_known_name: str | None = None
    associations: Sequence[AssociationInput] = ()
    keyed_by: Literal["name", "id"] = "name"


@dataclass
class EntityUpdate:
    """A change to an existing entity: only the given attributes change (``None`` removes an
    optional one). ``rt_version``, when given, must match the stored version (else Conflict).
    ``add_associations``/``remove_associations`` change its outbound links."""

    rt_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    rt_version: int | None = None
    rt_well_known_name: str | None = None
    add_associations: Sequence[AssociationInput] = ()
    remove_associations: Sequence[AssociationInput] = ()
    keyed_by: Literal["name", "id"] = "name"


class EntityWrites:
    """The single-entity write calls, defined once on top of :meth:`apply` (an atomic batch of
    creates and updates) for the in-process service and the remote client alike."""

    def apply(
        self,
        *,
        creates: Sequence[EntityInput] = (),
        updates: Sequence[EntityUpdate] = (),
    ) -> list[Entity]:
        raise NotImplementedError

    def create(
        self,
        ck_type_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        rt_id: str | None = None,
        rt_well_known_name: str | None = None,
        associations: Sequence[AssociationInput | tuple[str, str]] = (),
    ) -> Entity:
        """Create one entity; ``associations`` items are inputs or ``(role, target_rt_id)``."""
        links = [
            a if isinstance(a, AssociationInput) else AssociationInput(*a) for a in associations
        ]
        item = EntityInput(ck_type_id, attributes or {}, rt_id, rt_well_known_name, links)
        return self.create_many([item])[0]

    def create_many(self, inputs: Sequence[EntityInput]) -> list[Entity]:
        """Create every entity of ``inputs`` atomically (all valid and written, or none)."""
        return self.apply(creates=inputs)

    def update(
        self,
        rt_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        rt_version: int | None = None,
        rt_well_known_name: str | None = None,
    ) -> Entity:
        """Change some attributes (``None`` removes an optional one); ``rt_version``, when
        given, must match the stored version (else Conflict)."""
        change = EntityUpdate(rt_id, attributes or {}, rt_version, rt_well_known_name)
        return self.apply(updates=[change])[0]

    def update_many(self, updates: Sequence[EntityUpdate]) -> list[Entity]:
        return self.apply(updates=updates)

    def link(self, source_rt_id: str, role: str, target_rt_id: str) -> Entity:
        """Add the association ``source --role--> target`` (role id or outbound name)."""
        change = EntityUpdate(source_rt_id, add_associations=[AssociationInput(role, target_rt_id)])
        return self.apply(updates=[change])[0]

    def unlink(self, source_rt_id: str, role: str, target_rt_id: str) -> Entity:
        change = EntityUpdate(
            source_rt_id, remove_associations=[AssociationInput(role, target_rt_id)]
        )
        return self.apply(updates=[change])[0]
