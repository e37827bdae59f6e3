"""The runtime entity service: every entity write and read of a tenant goes through here.

It validates against the tenant's resolved model (types, attributes, associations and their
multiplicities), plans a batch of changes in memory and hands it to the entity store as one
atomic :class:`~workbench.storage.base.WriteBatch`. Multiplicity checks read the store before
writing; two processes racing on the same links are not serialised beyond what the store's own
unique indexes enforce.

The write path is in parts: the plan and the model facts (:mod:`.write_plan`), associations and
deletes (:mod:`.association_planning`) and secret attributes (:mod:`.secret_sealing`); this
module has the reads, the entity creates and updates, and the public API.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from workbench.ck.model import CkModel, CkType
from workbench.errors import ErrorCollector, NotFound, ValidationError
from workbench.query.model import EntityQuery, Filter
from workbench.runtime.association_planning import AssociationPlanning
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
from workbench.runtime.query_arguments import (
    AggregateArguments,
    FindArguments,
    aggregate_keywords,
    find_keywords,
)
from workbench.runtime.secret_sealing import SecretSealing
from workbench.runtime.values import (
    externalize_attributes,
    fast_normalize,
    normalize_attributes,
)
from workbench.runtime.write_plan import WritePlan
from workbench.storage.base import (
    EntityStore,
    StoredAssociation,
    StoredEntity,
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


class EntityService(AssociationPlanning, SecretSealing, EntityWrites):
    """CRUD, associations and queries over one tenant's runtime entities."""

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

    @find_keywords
    def find(self, arguments: FindArguments) -> EntityPage:
        """A page of entities of ``ck_type_id`` (and its subtypes unless ``polymorphic=False``);
        the keywords are those of :class:`~workbench.runtime.query_arguments.FindArguments`.

        ``where`` items are ``"voltage > 230"`` strings, ``(path, OPERATOR, value)`` tuples,
        GraphQL-style dicts or :class:`FieldFilter`; ``sort`` items are ``"-serialNumber"``
        strings or ``(path, descending)`` tuples.
        """
        page = self._store.find(self._query(arguments))
        model = self._model()
        return EntityPage(
            items=[self._to_entity(model, s) for s in page.items],
            has_next_page=page.has_next_page,
            end_cursor=page.end_cursor,
            total_count=page.total_count,
            cursors=page.cursors,
        )

    @find_keywords
    def build_query(self, arguments: FindArguments) -> EntityQuery:
        """Translate the arguments of :meth:`find` into the backend-neutral query model."""
        return self._query(arguments)

    def _query(self, arguments: FindArguments) -> EntityQuery:
        ck_type_id, first = arguments.ck_type_id, arguments.first
        model = self._model()
        model.type(ck_type_id)
        if first is not None and first < 0:
            raise ValidationError(f"first={first} is invalid: pass a page size of 0 or more")
        filters: list[Filter] = list(
            compile_filters(model, ck_type_id, [_to_field_filter(w) for w in arguments.where])
        )
        if arguments.search:
            filters.append(
                compile_search(model, ck_type_id, arguments.search, list(arguments.search_paths))
            )
        sort = [parse_cli_sort(s) if isinstance(s, str) else s for s in arguments.sort]
        type_ids = model.type_and_descendants(ck_type_id) if arguments.polymorphic else [ck_type_id]
        rt_ids = arguments.rt_ids
        return EntityQuery(
            type_ids=tuple(type_ids),
            rt_ids=tuple(validate_rt_id(r) for r in rt_ids) if rt_ids is not None else None,
            filters=tuple(filters),
            sort=compile_sort(model, ck_type_id, sort),
            first=first,
            after=arguments.after,
            include_total=arguments.include_total,
            include_archived=arguments.include_archived,
        )

    def count(self, ck_type_id: str, *, where: Iterable[WhereClause] = ()) -> int:
        return self._store.count(self.build_query(ck_type_id, where=where, first=None))

    @aggregate_keywords
    def aggregate(self, arguments: AggregateArguments) -> Any:
        """Statistics computed by the store, as a pandas DataFrame: one row per group of
        ``group_by`` (one row without), ``count``, then ``<path>_<function>`` columns
        (see :mod:`workbench.runtime.aggregations`; the keywords are those of
        :class:`~workbench.runtime.query_arguments.AggregateArguments`)."""
        from workbench.runtime.aggregations import (
            AggregationSpec,
            aggregate_entities,
            aggregation_frame,
        )

        a = arguments
        spec = AggregationSpec(
            a.avg, a.count, a.min, a.max, a.sum, a.group_by, a.resolve_enum_values_to_names
        )
        result = aggregate_entities(
            self,
            self._model(),
            a.ck_type_id,
            spec,
            where=a.where,
            search=a.search,
            search_paths=a.search_paths,
            include_archived=a.include_archived,
            first=a.first,
            after=a.after,
            create_index=a.create_index,
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
        plan = WritePlan(now=datetime.now(UTC))
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
        plan = WritePlan(now=datetime.now(UTC))
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
        plan: WritePlan,
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
        plan: WritePlan,
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
