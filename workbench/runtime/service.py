"""The runtime entity service: every entity write and read of a tenant goes through here.

It validates against the tenant's resolved model (types, attributes, associations and their
multiplicities), plans a batch of changes in memory and hands it to the entity store as one
atomic :class:`~workbench.storage.base.WriteBatch`. Multiplicity checks read the store before
writing; two processes racing on the same links are not serialised beyond what the store's own
unique indexes enforce.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from workbench.ck.model import AssociationEnd, CkModel, CkType, Multiplicity
from workbench.errors import ErrorCollector, NotFound, SecretKeyError, ValidationError
from workbench.query.model import EntityQuery, Filter
from workbench.runtime.entity import (
    AssociationInput,
    Entity,
    EntityInput,
    EntityPage,
    EntityUpdate,
    EntityWrites,
)
from workbench.runtime.filters import (
    FieldFilter,
    WhereClause,
    compile_filters,
    compile_search,
    compile_sort,
    parse_cli_filter,
    parse_cli_sort,
)
from workbench.runtime.ids import new_rt_id, validate_rt_id
from workbench.runtime.secrets import (
    MASK,
    SECRETS_NAMESPACE,
    SecretCipher,
    secret_attribute_names,
)
from workbench.runtime.values import (
    externalize_attributes,
    fast_normalize,
    normalize_attributes,
)
from workbench.storage.base import (
    EntityStore,
    MetaWrite,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)

__all__ = ["EntityService", "WhereClause"]

#: batches of this many entities or more run with the cyclic garbage collector paused
_GC_PAUSE_MIN = 1000


@contextmanager
def _gc_paused(size: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk batch is planned and written.

    Planning allocates several container objects per entity, all freed by reference counting
    (the write path creates no cycles); with the collector on, a bulk import spends a sixth of
    its time in collections walking every live object of the process. Reference counting goes
    on; cycles made meanwhile by other threads are collected once the batch is done. The
    collector is left alone when it is already off (by the application, or another batch).
    """
    if size < _GC_PAUSE_MIN or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: an rtId exactly as validate_rt_id returns it (lower case): such ids skip the full check
_CANONICAL_RT_ID = re.compile(r"[0-9a-f]{24}")


class _ModelFacts:
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
class _Plan:
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


class EntityService(EntityWrites):
    """CRUD, associations and queries over one tenant's runtime entities."""

    def __init__(self, store: EntityStore, model: Callable[[], CkModel]) -> None:
        self._store = store
        self._model = model
        self._facts: _ModelFacts | None = None
        #: encrypts secret attributes (the platform key; set by the tenant that opens the store)
        self.secret_cipher: SecretCipher | None = None

    def _facts_of(self, model: CkModel) -> _ModelFacts:
        facts = self._facts
        if facts is None or facts.model is not model:
            facts = self._facts = _ModelFacts(model)
        return facts

    def _stored_types(self, rt_ids: Sequence[str]) -> dict[str, str]:
        """rtId → ckTypeId of the existing, non-archived entities among ``rt_ids``; through the
        store (which need not decode the entities)."""
        if not rt_ids:
            return {}
        return self._store.entity_types(rt_ids, include_archived=False)

    @property
    def store(self) -> EntityStore:
        return self._store

    # ---- reads -------------------------------------------------------------------------------

    def get(self, rt_id: str, *, include_archived: bool = False) -> Entity:
        """The entity with ``rt_id``; NotFound when it does not exist (or is archived)."""
        found = self.get_many([rt_id], include_archived=include_archived)
        if rt_id.lower() not in found:
            raise NotFound(f"runtime entity {rt_id!r} does not exist in this tenant")
        return found[rt_id.lower()]

    def get_many(
        self, rt_ids: Sequence[str], *, include_archived: bool = False
    ) -> dict[str, Entity]:
        ids = [validate_rt_id(r) for r in rt_ids]
        stored = self._store.get_many(ids, include_archived=include_archived)
        model = self._model()
        return {rid: self._to_entity(model, s) for rid, s in stored.items()}

    def get_by_well_known_name(self, name: str) -> Entity:
        stored = self._store.get_by_well_known_name(name)
        if stored is None:
            raise NotFound(f"no runtime entity has rtWellKnownName {name!r} in this tenant")
        return self._to_entity(self._model(), stored)

    def entity_types(self, rt_ids: Sequence[str]) -> dict[str, str]:
        """rtId → ckTypeId of the existing, non-archived entities among ``rt_ids``."""
        return self._stored_types(list(rt_ids))

    def find(
        self,
        ck_type_id: str,
        *,
        where: Iterable[WhereClause] = (),
        search: str | None = None,
        search_paths: Sequence[str] = ("name",),
        sort: Iterable[str | tuple[str, bool]] = (),
        first: int | None = 100,
        after: str | None = None,
        rt_ids: Sequence[str] | None = None,
        include_archived: bool = False,
        include_total: bool = False,
        polymorphic: bool = True,
    ) -> EntityPage:
        """A page of entities of ``ck_type_id`` (and its subtypes unless ``polymorphic=False``).

        ``where`` items are ``"voltage > 230"`` strings, ``(path, OPERATOR, value)`` tuples,
        GraphQL-style dicts or :class:`FieldFilter`; ``sort`` items are ``"-serialNumber"``
        strings or ``(path, descending)`` tuples.
        """
        query = self.build_query(
            ck_type_id,
            where=where,
            search=search,
            search_paths=search_paths,
            sort=sort,
            first=first,
            after=after,
            rt_ids=rt_ids,
            include_archived=include_archived,
            include_total=include_total,
            polymorphic=polymorphic,
        )
        page = self._store.find(query)
        model = self._model()
        return EntityPage(
            items=[self._to_entity(model, s) for s in page.items],
            has_next_page=page.has_next_page,
            end_cursor=page.end_cursor,
            total_count=page.total_count,
            cursors=page.cursors,
        )

    def build_query(
        self,
        ck_type_id: str,
        *,
        where: Iterable[WhereClause] = (),
        search: str | None = None,
        search_paths: Sequence[str] = ("name",),
        sort: Iterable[str | tuple[str, bool]] = (),
        first: int | None = 100,
        after: str | None = None,
        rt_ids: Sequence[str] | None = None,
        include_archived: bool = False,
        include_total: bool = False,
        polymorphic: bool = True,
    ) -> EntityQuery:
        """Translate user-facing query arguments into the backend-neutral query model."""
        model = self._model()
        model.type(ck_type_id)
        if first is not None and first < 0:
            raise ValidationError(f"first={first} is invalid: pass a page size of 0 or more")
        filters: list[Filter] = list(
            compile_filters(model, ck_type_id, [_to_field_filter(w) for w in where])
        )
        if search:
            filters.append(compile_search(model, ck_type_id, search, list(search_paths)))
        sort_keys = compile_sort(
            model, ck_type_id, [parse_cli_sort(s) if isinstance(s, str) else s for s in sort]
        )
        type_ids = model.type_and_descendants(ck_type_id) if polymorphic else [ck_type_id]
        return EntityQuery(
            type_ids=tuple(type_ids),
            rt_ids=tuple(validate_rt_id(r) for r in rt_ids) if rt_ids is not None else None,
            filters=tuple(filters),
            sort=sort_keys,
            first=first,
            after=after,
            include_total=include_total,
            include_archived=include_archived,
        )

    def count(self, ck_type_id: str, *, where: Iterable[WhereClause] = ()) -> int:
        return self._store.count(self.build_query(ck_type_id, where=where, first=None))

    def aggregate(
        self,
        ck_type_id: str,
        *,
        group_by: Sequence[str] = (),
        avg: Sequence[str] = (),
        count: Sequence[str] = (),
        min: Sequence[str] = (),
        max: Sequence[str] = (),
        sum: Sequence[str] = (),
        where: Iterable[WhereClause] = (),
        search: str | None = None,
        search_paths: Sequence[str] = ("name",),
        include_archived: bool = False,
        resolve_enum_values_to_names: bool = True,
        first: int | None = None,
        after: str | None = None,
        create_index: bool = False,
    ) -> Any:
        """Statistics computed by the store, as a pandas DataFrame: one row per group of
        ``group_by`` (one row without), ``count``, then ``<path>_<function>`` columns
        (see :mod:`workbench.runtime.aggregations`). ``create_index``: first create the store's
        index for this aggregation (SQLite), for aggregations that run often."""
        from workbench.runtime.aggregations import (
            AggregationSpec,
            aggregate_entities,
            aggregation_frame,
        )

        spec = AggregationSpec(avg, count, min, max, sum, group_by, resolve_enum_values_to_names)
        result = aggregate_entities(
            self,
            self._model(),
            ck_type_id,
            spec,
            where=where,
            search=search,
            search_paths=search_paths,
            include_archived=include_archived,
            first=first,
            after=after,
            create_index=create_index,
        )
        return aggregation_frame(result)

    def navigate(self, rt_id: str, name: str, *, include_archived: bool = False) -> list[Entity]:
        """Entities linked to ``rt_id`` through the association end ``name`` (outbound name such
        as ``parent`` or inbound name such as ``children``)."""
        source = self.get(rt_id, include_archived=True)
        model = self._model()
        end = model.end(source.ck_type_id, name)
        links = self._store.associations([source.rt_id], end.direction, end.role.id)
        other_ids = [
            link.target_rt_id if end.direction == "outbound" else link.source_rt_id
            for link in links
        ]
        found = self.get_many(other_ids, include_archived=include_archived)
        return [found[i] for i in other_ids if i in found]

    def links(
        self, rt_ids: Sequence[str], direction: Literal["outbound", "inbound"] = "outbound"
    ) -> list[StoredAssociation]:
        return self._store.associations([validate_rt_id(r) for r in rt_ids], direction)

    # ---- writes ------------------------------------------------------------------------------

    def delete(
        self, rt_ids: Sequence[str] | str, *, erase: bool = False, cascade: bool = False
    ) -> list[str]:
        """Archive (default) or erase entities; returns every rtId deleted (cascade included).

        Deleting an entity that another entity needs (an association whose outbound
        multiplicity is ``One``) fails unless ``cascade=True``, which deletes those too."""
        ids = [rt_ids] if isinstance(rt_ids, str) else list(rt_ids)
        plan = _Plan(now=datetime.now(UTC))
        deleted = self._plan_delete(plan, [validate_rt_id(r) for r in ids], erase, cascade)
        self._store.apply(plan.to_batch())
        return deleted

    def apply(
        self,
        *,
        creates: Sequence[EntityInput] = (),
        updates: Sequence[EntityUpdate] = (),
        return_entities: bool = True,
    ) -> list[Entity]:
        """Create and update entities in one atomic batch; returns them in input order
        (or nothing with ``return_entities=False``, the bulk-import path)."""
        with _gc_paused(len(creates) + len(updates)):
            return self._apply(creates, updates, return_entities)

    def _apply(
        self,
        creates: Sequence[EntityInput],
        updates: Sequence[EntityUpdate],
        return_entities: bool,
    ) -> list[Entity]:
        model = self._model()
        plan = _Plan(now=datetime.now(UTC))
        errors = ErrorCollector()
        order: list[str] = []
        pending_links: list[tuple[str, AssociationInput, str]] = []
        for index, item in enumerate(creates):
            location = f"entities[{index}]"
            rt_id = self._plan_create(model, plan, item, location, errors)
            if rt_id:
                order.append(rt_id)
                for association in item.associations:
                    pending_links.append((rt_id, association, location))
        existing = self._load_for_update(updates, errors)
        for index, change in enumerate(updates):
            location = f"updates[{index}]"
            rt_id = self._plan_update(model, plan, change, existing, location, errors)
            if rt_id:
                order.append(rt_id)
                pending_links.extend((rt_id, a, location) for a in change.add_associations)
                for removal in change.remove_associations:
                    self._plan_unlink(model, plan, rt_id, removal, location, errors)
        self._plan_links(model, plan, pending_links, errors)
        errors.raise_if_any(ValidationError, "nothing was written: the batch has invalid entities")
        self._check_multiplicities(model, plan, errors)
        errors.raise_if_any(ValidationError, "nothing was written: association rules are violated")
        self._seal_secrets(model, plan)
        self._store.apply(plan.to_batch())
        if not return_entities:
            return []
        return [self._to_entity(model, plan.final(rt_id)) for rt_id in order]  # type: ignore[arg-type]

    # ---- planning ----------------------------------------------------------------------------

    def _plan_create(
        self,
        model: CkModel,
        plan: _Plan,
        item: EntityInput,
        location: str,
        errors: ErrorCollector,
    ) -> str | None:
        concrete = self._facts_of(model).concrete
        ck_type = concrete.get(item.ck_type_id)
        if ck_type is None:
            ck_type = self._concrete_type(model, item.ck_type_id, location, errors)
            if ck_type is not None:
                concrete[ck_type.id] = ck_type
        try:
            rt_id = validate_rt_id(item.rt_id, f"{location}.rtId") if item.rt_id else new_rt_id()
        except ValidationError as exc:
            errors.add(exc.message, location)
            return None
        if rt_id in plan.inserts:
            errors.add(
                f"rtId {rt_id} appears twice in the batch; give each entity its own", location
            )
            return None
        if ck_type is None:
            return None
        values = fast_normalize(model, ck_type, item.attributes, item.keyed_by)
        if values is None:  # not plainly valid: the exact path decides and reports
            try:
                values = normalize_attributes(
                    model, ck_type, item.attributes, keyed_by=item.keyed_by, location=location
                )
            except ValidationError as exc:
                errors.details.extend(exc.details or [_detail(exc, location)])
                return None
        now = plan.now
        plan.inserts[rt_id] = StoredEntity(
            rt_id, ck_type.id, values, 1, now, now, item.rt_well_known_name or None
        )
        plan.link_sources.add(rt_id)
        return rt_id

    def _load_for_update(
        self, updates: Sequence[EntityUpdate], errors: ErrorCollector
    ) -> dict[str, StoredEntity]:
        ids = []
        for index, change in enumerate(updates):
            try:
                ids.append(validate_rt_id(change.rt_id, f"updates[{index}].rtId"))
            except ValidationError as exc:
                errors.add(exc.message, f"updates[{index}]")
        return self._store.get_many(ids, include_archived=False) if ids else {}

    def _plan_update(
        self,
        model: CkModel,
        plan: _Plan,
        change: EntityUpdate,
        existing: dict[str, StoredEntity],
        location: str,
        errors: ErrorCollector,
    ) -> str | None:
        rt_id = change.rt_id.lower()
        current = plan.final(rt_id) or existing.get(rt_id)
        if current is None:
            errors.add(f"runtime entity {change.rt_id!r} does not exist (or is archived)", location)
            return None
        ck_type = model.types.get(current.ck_type_id)
        if ck_type is None:
            errors.add(f"type {current.ck_type_id} of {rt_id} is no longer in the model", location)
            return None
        try:
            changes = normalize_attributes(
                model,
                ck_type,
                change.attributes,
                keyed_by=change.keyed_by,
                partial=True,
                location=location,
            )
        except ValidationError as exc:
            errors.details.extend(exc.details or [_detail(exc, location)])
            return None
        attributes = dict(current.attributes)
        for key in _explicit_removals(ck_type, change.attributes):
            attributes.pop(key, None)
        attributes.update(changes)
        missing = [
            a.name
            for a in ck_type.attributes.values()
            if not a.is_optional and attributes.get(a.name) is None
        ]
        if missing:
            errors.add(
                f"required attribute(s) {', '.join(missing)} of {ck_type.id} cannot be removed",
                location,
            )
            return None
        updated = replace(
            current,
            attributes=attributes,
            rt_version=current.rt_version + 1,
            rt_changed_datetime=plan.now,
            rt_well_known_name=(
                change.rt_well_known_name
                if change.rt_well_known_name is not None
                else current.rt_well_known_name
            ),
        )
        if rt_id in plan.inserts:
            plan.inserts[rt_id] = replace(updated, rt_version=1)
        else:
            expected = change.rt_version
            if rt_id in plan.updates:
                expected = plan.updates[rt_id][1]
            elif expected is None:
                expected = current.rt_version
            plan.updates[rt_id] = (updated, expected)
        if change.add_associations or change.remove_associations:
            plan.link_sources.add(rt_id)
        return rt_id

    def _resolve_role(
        self, model: CkModel, ck_type: CkType, role: str, location: str, errors: ErrorCollector
    ) -> str | None:
        facts = self._facts_of(model)
        found = facts.roles.get((ck_type.id, role))
        if found is None:
            found = self._find_role(model, ck_type, role, location, errors)
            if found is not None:
                facts.roles[(ck_type.id, role)] = found
        return found

    def _find_role(
        self, model: CkModel, ck_type: CkType, role: str, location: str, errors: ErrorCollector
    ) -> str | None:
        if "/" in role:
            if role not in model.roles:
                errors.add(f"association role {role!r} is not in the model", location)
                return None
            return role
        for end in model.outbound_ends(ck_type.id):
            if end.name.lower() == role.lower():
                return end.role.id
        names = sorted({e.name for e in model.outbound_ends(ck_type.id)})
        errors.add(
            f"type {ck_type.id} has no outbound association {role!r}; "
            f"use a role id or one of: {', '.join(names) or 'none'}",
            location,
        )
        return None

    def _plan_links(
        self,
        model: CkModel,
        plan: _Plan,
        pending: list[tuple[str, AssociationInput, str]],
        errors: ErrorCollector,
    ) -> None:
        facts = self._facts_of(model)
        canonical = _CANONICAL_RT_ID.fullmatch
        target_ids: set[str] = set()
        for _, link, location in pending:
            target = link.target_rt_id
            if type(target) is str and canonical(target):
                target_ids.add(target)
                continue
            try:
                target_ids.add(validate_rt_id(target, f"{location}.targetRtId"))
            except ValidationError as exc:
                errors.add(exc.message, location)
        # types of the targets: planned ones from the plan, the others from the store
        target_types: dict[str, str] = {}
        outside = []
        for target_id in target_ids:
            planned = plan.final(target_id)
            if planned is None:
                outside.append(target_id)
            else:
                target_types[target_id] = planned.ck_type_id
        target_types.update(self._stored_types(outside))
        add = plan.add_links.append
        inserts = plan.inserts
        types = model.types
        roles = facts.roles
        allowed = facts.allowed
        for source_id, link, location in pending:
            source = inserts.get(source_id) or plan.final(source_id)
            assert source is not None
            source_type_id = source.ck_type_id
            source_type = types[source_type_id]
            role_id = roles.get((source_type_id, link.role)) or self._resolve_role(
                model, source_type, link.role, location, errors
            )
            target_id = link.target_rt_id.lower()
            target_type_id = target_types.get(target_id)
            if role_id is None:
                continue
            if target_type_id is None:
                errors.add(
                    f"association {role_id} targets {link.target_rt_id!r}, which does not exist "
                    "in this tenant (or is archived); create the target first or in the same batch",
                    location,
                )
                continue
            if link.target_ck_type_id and link.target_ck_type_id != target_type_id:
                errors.add(
                    f"association {role_id}: target {target_id} is a {target_type_id}, "
                    f"not a {link.target_ck_type_id}",
                    location,
                )
                continue
            if not (
                allowed.get((source_type_id, role_id, target_type_id))
                or facts.declares(source_type, role_id, target_type_id)
            ):
                allowed_types = sorted(
                    a.target_type_id for a in source_type.associations if a.role_id == role_id
                )
                reason = (
                    f"its target must be a {' or '.join(allowed_types)} (or a subtype), "
                    f"but {target_id} is a {target_type_id}"
                    if allowed_types
                    else f"{source_type.id} does not declare role {role_id}"
                )
                errors.add(
                    f"association {role_id} from {source_type.id} is not allowed: {reason}",
                    location,
                )
                continue
            add(StoredAssociation(role_id, source_id, source_type_id, target_id, target_type_id))

    def _plan_unlink(
        self,
        model: CkModel,
        plan: _Plan,
        source_id: str,
        link: AssociationInput,
        location: str,
        errors: ErrorCollector,
    ) -> None:
        source = plan.final(source_id)
        assert source is not None
        role_id = self._resolve_role(
            model, model.types[source.ck_type_id], link.role, location, errors
        )
        if role_id is None:
            return
        existing = [
            a
            for a in self._store.associations([source_id], "outbound", role_id)
            if a.target_rt_id == link.target_rt_id.lower()
        ]
        if not existing:
            errors.add(
                f"{source_id} has no association {role_id} to {link.target_rt_id}; "
                "nothing to remove",
                location,
            )
        plan.remove_links.extend(existing)

    def _check_multiplicities(self, model: CkModel, plan: _Plan, errors: ErrorCollector) -> None:
        facts = self._facts_of(model)
        erased = plan.erase
        # only sources whose type has One / ZeroOrOne ends can break an outbound multiplicity
        checked: dict[str, tuple[StoredEntity, list[AssociationEnd]]] = {}
        inserts = plan.inserts
        limited_ends = facts.limited_ends
        for source_id in plan.link_sources:
            if source_id in erased:
                continue
            entity = inserts.get(source_id) or plan.final(source_id)
            assert entity is not None
            ends = limited_ends.get(entity.ck_type_id)
            if ends is None:
                ends = facts.ends_to_check(entity.ck_type_id)
            if ends:
                checked[source_id] = (entity, ends)
        if checked:
            # each source's links after the batch: (stored - removed) | added; a new entity has
            # no stored links (nor removals), so its links are those the batch adds
            outbound: dict[str, set[tuple[str, str]]] = {}
            existing_ids = sorted(s for s in checked if s not in inserts)
            if existing_ids:
                for link in self._store.associations(existing_ids, "outbound"):
                    pair = (link.role_id, link.target_rt_id)
                    outbound.setdefault(link.source_rt_id, set()).add(pair)
                for link in plan.remove_links:
                    pair = (link.role_id, link.target_rt_id)
                    outbound.get(link.source_rt_id, set()).discard(pair)
            for link in plan.add_links:
                source_id = link.source_rt_id
                if source_id in checked:
                    pairs = outbound.get(source_id)
                    if pairs is None:
                        outbound[source_id] = {(link.role_id, link.target_rt_id)}
                    else:
                        pairs.add((link.role_id, link.target_rt_id))
            violations: list[tuple[str, str]] = []
            nothing: set[tuple[str, str]] = set()
            for source_id, (entity, ends) in checked.items():
                pairs = outbound.get(source_id, nothing)
                for end in ends:
                    role_id = end.role.id
                    count = 0
                    for pair_role, target in pairs:
                        if pair_role == role_id and target not in erased:
                            count += 1
                    if end.multiplicity is Multiplicity.ONE and count != 1:
                        violations.append(
                            (
                                source_id,
                                f"{entity.ck_type_id} needs exactly one '{end.name}' ({role_id}), "
                                f"has {count}; link it to a {end.target_type_id}",
                            )
                        )
                    elif end.multiplicity is Multiplicity.ZERO_OR_ONE and count > 1:
                        violations.append(
                            (
                                source_id,
                                f"{entity.ck_type_id} may have at most one '{end.name}' "
                                f"({role_id}), has {count}",
                            )
                        )
            # by source, each source's ends in model order (a stable sort keeps that order)
            violations.sort(key=lambda item: item[0])
            for source_id, message in violations:
                errors.add(message, source_id)
        # inbound limits: only roles that allow one source per target at most
        limited_roles = facts.limited_inbound
        limited: dict[tuple[str, str], set[str]] = defaultdict(set)
        if limited_roles:
            for link in plan.add_links:
                if link.role_id in limited_roles:
                    limited[(link.target_rt_id, link.role_id)].add(link.source_rt_id)
        if limited:
            targets = sorted({t for t, _ in limited})
            removed = {(a.source_rt_id, a.role_id, a.target_rt_id) for a in plan.remove_links}
            for link in self._store.associations(targets, "inbound"):
                if (link.source_rt_id, link.role_id, link.target_rt_id) not in removed:
                    key = (link.target_rt_id, link.role_id)
                    if key in limited:
                        limited[key].add(link.source_rt_id)
            for (target, role_id), sources_ in limited.items():
                if len(sources_) > 1:
                    role = model.roles[role_id]
                    errors.add(
                        f"{target} may be the '{role.inbound_name}' target of at most one entity "
                        f"({role_id}), would have {len(sources_)}",
                        target,
                    )

    def _plan_delete(self, plan: _Plan, rt_ids: list[str], erase: bool, cascade: bool) -> list[str]:
        model = self._model()
        found = self._store.get_many(rt_ids, include_archived=erase)
        missing = [r for r in rt_ids if r not in found]
        if missing:
            raise NotFound(
                f"cannot delete {', '.join(missing)}: no such runtime entity in this tenant"
            )
        deleting: dict[str, StoredEntity] = dict(found)
        frontier = list(found)
        while frontier:
            blockers: dict[str, list[str]] = defaultdict(list)
            for link in self._store.associations(frontier, "inbound"):
                if link.source_rt_id in deleting:
                    continue
                ends = model.outbound_ends(link.source_ck_type_id)
                end = next((e for e in ends if e.role.id == link.role_id), None)
                if end is not None and end.multiplicity is Multiplicity.ONE:
                    blockers[link.source_rt_id].append(link.target_rt_id)
            if not blockers:
                break
            if not cascade:
                first_source, targets = next(iter(blockers.items()))
                raise ValidationError(
                    f"cannot delete {', '.join(sorted(set(targets)))}: {len(blockers)} "
                    f"entit{'y needs' if len(blockers) == 1 else 'ies need'} it (e.g. "
                    f"{first_source}); delete those first or ask for a cascading delete"
                )
            more = self._store.get_many(list(blockers), include_archived=erase)
            deleting.update(more)
            frontier = list(more)
        if erase:
            plan.erase.update(deleting)
            facts = self._facts_of(model)
            plan.meta.extend(
                MetaWrite(SECRETS_NAMESPACE, rid, None)
                for rid, entity in deleting.items()
                if facts.secrets_of(entity.ck_type_id)
            )
        else:
            for rid, entity in deleting.items():
                if not entity.archived:
                    archived = replace(
                        entity,
                        archived=True,
                        rt_version=entity.rt_version + 1,
                        rt_changed_datetime=plan.now,
                    )
                    plan.updates[rid] = (archived, entity.rt_version)
        return list(deleting)

    # ---- secrets -----------------------------------------------------------------------------

    def _seal_secrets(self, model: CkModel, plan: _Plan) -> None:
        """Move the new values of secret attributes into encrypted meta documents (same batch);
        the entities keep MASK. MASK written back keeps the stored secret; a removed attribute
        loses it."""
        facts = self._facts_of(model)
        touched = [
            (e, rid in plan.inserts)
            for rid, e in (
                *plan.inserts.items(),
                *((rid, u[0]) for rid, u in plan.updates.items()),
            )
            if facts.secrets_of(e.ck_type_id) and not e.archived
        ]
        if not touched:
            return
        updated = [e.rt_id for e, new in touched if not new]
        stored = {r: self._store.get_meta(SECRETS_NAMESPACE, r) or {} for r in updated}
        for entity, new in touched:
            before = {} if new else stored[entity.rt_id]
            document = dict(before)
            for name in facts.secrets_of(entity.ck_type_id):
                value = entity.attributes.get(name)
                if value is None:
                    document.pop(name, None)
                elif value == MASK:
                    if name not in document:  # nothing stored to keep: the attribute is unset
                        del entity.attributes[name]
                else:
                    document[name] = self._cipher(entity.rt_id).encrypt(value)
                    entity.attributes[name] = MASK
            if document != before:
                plan.meta.append(MetaWrite(SECRETS_NAMESPACE, entity.rt_id, document or None))

    def _cipher(self, rt_id: str) -> SecretCipher:
        if self.secret_cipher is None:
            raise SecretKeyError(
                f"entity {rt_id} has secret attributes but this entity service has no secret "
                "key; open the tenant through workbench.open(DATA_DIR) (its key file is "
                "DATA_DIR/secrets/entity-secrets.key) or set EntityService.secret_cipher"
            )
        return self.secret_cipher

    def reveal_secrets(self, entity: Entity) -> dict[str, Any]:
        """The attributes of ``entity`` (GraphQL names) with its secrets decrypted: only for the
        adapter that uses the entity (the Communication Controller's configuration push),
        never for an API answer."""
        attributes = dict(entity.attributes)
        model = self._model()
        ck_type = model.types.get(entity.ck_type_id)
        names = self._facts_of(model).secrets_of(entity.ck_type_id)
        if ck_type is None or not names:
            return attributes
        document = self._store.get_meta(SECRETS_NAMESPACE, entity.rt_id) or {}
        plain: dict[str, Any] = {}
        for name, token in document.items():
            if name in names:
                what = f"secret attribute {name} of {entity.ck_type_id} {entity.rt_id}"
                plain[name] = self._cipher(entity.rt_id).decrypt(str(token), what=what)
        attributes.update(externalize_attributes(model, ck_type, plain, keyed_by="name"))
        return attributes

    # ---- helpers -----------------------------------------------------------------------------

    def _concrete_type(
        self, model: CkModel, ck_type_id: str, location: str, errors: ErrorCollector
    ) -> CkType | None:
        ck_type = model.types.get(ck_type_id)
        if ck_type is None:
            errors.add(
                f"type {ck_type_id!r} is not in this tenant's model; import its library first",
                location,
            )
            return None
        if ck_type.is_abstract:
            concrete = [t for t in model.descendants(ck_type_id) if not model.types[t].is_abstract]
            errors.add(
                f"type {ck_type_id} is abstract and has no instances; create one of its "
                f"subtypes instead: {', '.join(concrete) or 'none defined'}",
                location,
            )
            return None
        return ck_type

    def _to_entity(self, model: CkModel, stored: StoredEntity) -> Entity:
        ck_type = model.types.get(stored.ck_type_id)
        attributes = (
            externalize_attributes(model, ck_type, stored.attributes, keyed_by="name")
            if ck_type is not None
            else dict(stored.attributes)
        )
        return Entity(
            rt_id=stored.rt_id,
            ck_type_id=stored.ck_type_id,
            rt_version=stored.rt_version,
            rt_creation_datetime=stored.rt_creation_datetime,
            rt_changed_datetime=stored.rt_changed_datetime,
            attributes=dict(attributes),
            rt_well_known_name=stored.rt_well_known_name,
            archived=stored.archived,
        )


def _detail(exc: ValidationError, location: str) -> Any:
    from workbench.errors import ErrorDetail

    return ErrorDetail(exc.message, location)


def _explicit_removals(ck_type: CkType, attributes: Mapping[str, Any]) -> list[str]:
    """Declared names of attributes set to ``None`` in an update (meaning: remove)."""
    out = []
    for key, value in attributes.items():
        if value is None:
            match = ck_type.attributes.get(key) or next(
                (
                    a
                    for a in ck_type.attributes.values()
                    if a.name.lower() == key.lower() or a.attribute_id == key
                ),
                None,
            )
            if match is not None:
                out.append(match.name)
    return out


def _to_field_filter(value: WhereClause) -> FieldFilter:
    """A ``where`` item as a FieldFilter; operators may be names (``GREATER_THAN``, any case) or
    symbols (``>=``), checked with the rest when the filters are compiled."""
    if isinstance(value, FieldFilter):
        return value
    if isinstance(value, str):
        return parse_cli_filter(value)
    if isinstance(value, tuple):
        path, operator, comparison = value
        return FieldFilter(path, operator, comparison)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return FieldFilter(value["attributePath"], value["operator"], value.get("comparisonValue"))
    raise ValidationError(f"filter {value!r} is not a string, tuple, dict or FieldFilter")
