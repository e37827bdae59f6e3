"""What the write path of :class:`~workbench.runtime.service.EntityService` works with.

:class:`WritePlan` is the plan of one atomic commit, :class:`ModelFacts` the answers about a
resolved model that planning asks per entity and link, and :class:`EntityServiceState` the state
the service shares with its planning parts (:mod:`.association_planning`, :mod:`.secret_sealing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from workbench.ck.model import AssociationEnd, CkModel, CkType, Multiplicity
from workbench.runtime.secrets import SecretCipher, secret_attribute_names
from workbench.storage.base import (
    EntityStore,
    MetaWrite,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)

__all__ = ["EntityServiceState", "ModelFacts", "WritePlan"]


class ModelFacts:
    """Answers about one resolved model that the write path asks per entity and link.

    Resolved models are not changed once built; the service keeps the facts of the model it
    saw last and starts afresh when the tenant's model is replaced (a library import)."""

    def __init__(self, model: CkModel) -> None:
        self.model = model
        #: (source type, role as given) → role id, for roles that resolved
        self.roles: dict[tuple[str, str], str] = {}
        #: (source type, role id, target type) → the source type declares that link
        self.allowed: dict[tuple[str, str, str], bool] = {}
        #: type → its outbound ends with a One / ZeroOrOne multiplicity (one per role id)
        self.limited_ends: dict[str, list[AssociationEnd]] = {}
        #: concrete (non-abstract) types by id, as _concrete_type found them
        self.concrete: dict[str, CkType] = {}
        #: type → stored names of its secret attributes (workbench.runtime.secrets)
        self.secret_names: dict[str, frozenset[str]] = {}
        #: roles whose inbound side allows one source at most
        self.limited_inbound = frozenset(
            role_id
            for role_id, role in model.roles.items()
            if role.inbound_multiplicity is not Multiplicity.N
        )

    def secrets_of(self, type_id: str) -> frozenset[str]:
        names = self.secret_names.get(type_id)
        if names is None:
            ck_type = self.model.types.get(type_id)
            names = secret_attribute_names(self.model, ck_type) if ck_type else frozenset()
            self.secret_names[type_id] = names
        return names

    def ends_to_check(self, type_id: str) -> list[AssociationEnd]:
        found = self.limited_ends.get(type_id)
        if found is None:
            ends = {e.role.id: e for e in self.model.outbound_ends(type_id)}.values()
            found = self.limited_ends[type_id] = [
                e for e in ends if e.multiplicity in (Multiplicity.ONE, Multiplicity.ZERO_OR_ONE)
            ]
        return found

    def declares(self, source_type: CkType, role_id: str, target_type_id: str) -> bool:
        key = (source_type.id, role_id, target_type_id)
        found = self.allowed.get(key)
        if found is None:
            found = self.allowed[key] = any(
                a.role_id == role_id and self.model.is_a(target_type_id, a.target_type_id)
                for a in source_type.associations
            )
        return found


@dataclass
class WritePlan:
    """Changes being assembled for one atomic commit."""

    now: datetime
    inserts: dict[str, StoredEntity] = field(default_factory=dict)
    updates: dict[str, tuple[StoredEntity, int | None]] = field(default_factory=dict)
    erase: set[str] = field(default_factory=set)
    add_links: list[StoredAssociation] = field(default_factory=list)
    remove_links: list[StoredAssociation] = field(default_factory=list)
    #: entities whose outbound links change (multiplicities to check)
    link_sources: set[str] = field(default_factory=set)
    #: encrypted secrets put or deleted with the entities
    meta: list[MetaWrite] = field(default_factory=list)

    def final(self, rt_id: str) -> StoredEntity | None:
        if rt_id in self.inserts:
            return self.inserts[rt_id]
        if rt_id in self.updates:
            return self.updates[rt_id][0]
        return None

    def to_batch(self) -> WriteBatch:
        return WriteBatch(
            inserts=list(self.inserts.values()),
            updates=list(self.updates.values()),
            erase=sorted(self.erase),
            add_associations=self.add_links,
            remove_associations=self.remove_links,
            meta=self.meta,
        )


class EntityServiceState:
    """The tenant's store and model, and the facts of the model seen last."""

    def __init__(self, store: EntityStore, model: Callable[[], CkModel]) -> None:
        self._store = store
        self._model = model
        self._facts: ModelFacts | None = None
        #: encrypts secret attributes (the platform key; set by the tenant that opens the store)
        self.secret_cipher: SecretCipher | None = None

    def _facts_of(self, model: CkModel) -> ModelFacts:
        facts = self._facts
        if facts is None or facts.model is not model:
            facts = self._facts = ModelFacts(model)
        return facts

    def _stored_types(self, rt_ids: Sequence[str]) -> dict[str, str]:
        """rtId → ckTypeId of the existing, non-archived entities among ``rt_ids``; through the
        store (which need not decode the entities)."""
        if not rt_ids:
            return {}
        return self._store.entity_types(rt_ids, include_archived=False)
