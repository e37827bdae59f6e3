"""The association part of the entity write path: roles, links, unlinks, multiplicities, and
deletes with what they cascade to (a base of :class:`~workbench.runtime.service.EntityService`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace

from workbench.ck.model import AssociationEnd, CkModel, CkType, Multiplicity
from workbench.errors import ErrorCollector, NotFound, ValidationError
from workbench.runtime.entity import AssociationInput
from workbench.runtime.ids import validate_rt_id
from workbench.runtime.secrets import SECRETS_NAMESPACE
from workbench.runtime.write_plan import EntityServiceState, WritePlan
from workbench.storage.base import MetaWrite, StoredAssociation, StoredEntity

__all__ = ["AssociationPlanning"]

#: an rtId exactly as validate_rt_id returns it (lower case): such ids skip the full check
_CANONICAL_RT_ID = re.compile(r"[0-9a-f]{24}")


class AssociationPlanning(EntityServiceState):
    """Plans the association changes of a batch into a :class:`WritePlan` and checks them."""

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
        plan: WritePlan,
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
        plan: WritePlan,
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

    def _check_multiplicities(
        self, model: CkModel, plan: WritePlan, errors: ErrorCollector
    ) -> None:
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

    def _plan_delete(
        self, plan: WritePlan, rt_ids: list[str], erase: bool, cascade: bool
    ) -> list[str]:
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
