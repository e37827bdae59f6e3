"""Entities as resolver sources, grouped so association fields load for a whole page at once.

Every entity handed to GraphQL is a plain dict keyed by field names (so graphql-core's default
resolver reads attributes without a Python resolver per field) plus a private
:data:`BATCH_KEY` entry: the :class:`EntityBatch` of the page it came in. The first association
field resolved on any entity of a batch loads that association for every entity of the batch (one
``links()`` call per direction and one entity read), so a page of 100 meters asking for their
parents costs two store calls, not 200.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from graphql import Undefined

from workbench.runtime.entity import Entity
from workbench.runtime.service import EntityService
from workbench.storage.base import StoredAssociation

__all__ = ["BATCH_KEY", "EntityBatch", "entity_source", "entity_sources"]

#: Key of the batch inside an entity source dict (no field can start with ``__``).
BATCH_KEY = "__batch"

Direction = Literal["outbound", "inbound"]


class EntityBatch:
    """Entities resolved together, with the association data loaded for all of them."""

    __slots__ = ("_links", "_loaded", "rt_ids")

    def __init__(self, rt_ids: Sequence[str]) -> None:
        self.rt_ids = list(rt_ids)
        self._links: dict[str, dict[str, list[StoredAssociation]]] = {}
        self._loaded: dict[Any, Any] = {}

    def links(
        self, service: EntityService, direction: Direction
    ) -> dict[str, list[StoredAssociation]]:
        """The associations of every entity of the batch in ``direction``, by entity rtId."""
        found = self._links.get(direction)
        if found is None:
            found = {}
            if self.rt_ids:
                # the rtIds come from stored entities: no need for the service's validation
                links = service.store.associations(self.rt_ids, direction)
                outbound = direction == "outbound"
                for link in links:
                    own = link.source_rt_id if outbound else link.target_rt_id
                    mine = found.get(own)
                    if mine is None:
                        found[own] = [link]
                    else:
                        mine.append(link)
            self._links[direction] = found
        return found

    def peek(self, key: Any) -> Any:
        """What :meth:`loaded` holds for ``key``, or ``graphql.Undefined``."""
        return self._loaded.get(key, Undefined)

    def loaded(self, key: Any, load: Callable[[], Any]) -> Any:
        """``load()`` once per batch and ``key`` (an association field with its arguments)."""
        try:
            return self._loaded[key]
        except KeyError:
            value = self._loaded[key] = load()
            return value


def entity_source(entity: Entity, batch: EntityBatch) -> dict[str, Any]:
    """The resolver source of one entity: attributes by field name plus the system fields."""
    source = dict(entity.attributes)
    source["rtId"] = entity.rt_id
    source["ckTypeId"] = entity.ck_type_id
    source["rtWellKnownName"] = entity.rt_well_known_name
    source["rtVersion"] = entity.rt_version
    source["rtCreationDateTime"] = entity.rt_creation_datetime
    source["rtChangedDateTime"] = entity.rt_changed_datetime
    source[BATCH_KEY] = batch
    return source


def entity_sources(entities: Sequence[Entity]) -> list[dict[str, Any]]:
    """Sources of entities resolved together (one batch)."""
    batch = EntityBatch([e.rt_id for e in entities])
    return [entity_source(e, batch) for e in entities]
