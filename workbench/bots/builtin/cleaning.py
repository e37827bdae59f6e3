"""Data preparation and cleaning of the entities of one CK type.

Rules, applied in this order to each entity matching the filter: ``trim`` (strip string
attributes and collapse inner runs of whitespace), ``lower`` (lower-case the named string
attributes, e.g. e-mail addresses), ``defaults`` (fill attributes that are missing), then
``dedupe_by`` (entities equal in the named attributes after cleaning: the oldest stays, the
others are archived — deleted without ``erase`` — or erased with ``erase=True``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.bots.builtin.selection import find_all
from workbench.runtime.entity import EntityUpdate

__all__ = ["CleaningReport", "clean_entities", "clean_value"]

_SPACES = re.compile(r"\s+")


@dataclass
class CleaningReport:
    examined: int = 0
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_value(value: Any, *, trim: bool = True, lower: bool = False) -> Any:
    """A string trimmed (and lower-cased); lists of strings item by item; others unchanged."""
    if isinstance(value, str):
        text = _SPACES.sub(" ", value).strip() if trim else value
        return text.lower() if lower else text
    if isinstance(value, list):
        return [clean_value(v, trim=trim, lower=lower) for v in value]
    return value


def _key(name: str) -> str:
    return name[:1].lower() + name[1:]


def clean_entities(
    tenant: Any,
    ck_type_id: str,
    *,
    where: Any = None,
    trim: bool = True,
    lower: list[str] | None = None,
    defaults: dict[str, Any] | None = None,
    dedupe_by: list[str] | None = None,
    erase: bool = False,
    dry_run: bool = False,
) -> CleaningReport:
    """Clean the entities of ``ck_type_id`` matching ``where``; see the module doc. With
    ``dry_run`` nothing is written and the report says what would change."""
    lowered = {_key(a) for a in lower or ()}
    filled = {_key(k): v for k, v in (defaults or {}).items()}
    entities = find_all(tenant, ck_type_id, where)
    report = CleaningReport(examined=len(entities), dry_run=dry_run)
    cleaned: dict[str, dict[str, Any]] = {}
    updates: list[EntityUpdate] = []
    for entity in entities:
        values = dict(entity.attributes)
        for name, value in entity.attributes.items():
            values[name] = clean_value(value, trim=trim, lower=name in lowered)
        for name, value in filled.items():
            if values.get(name) in (None, "", []):
                values[name] = value
        change = {k: v for k, v in values.items() if entity.attributes.get(k) != v}
        cleaned[entity.rt_id] = values
        if change:
            report.changed[entity.rt_id] = change
            updates.append(EntityUpdate(entity.rt_id, change))
    if dedupe_by:
        keys = [_key(a) for a in dedupe_by]
        groups: dict[tuple[str, ...], list[Any]] = {}
        for entity in entities:
            values = cleaned[entity.rt_id]
            if all(values.get(k) not in (None, "") for k in keys):
                groups.setdefault(tuple(repr(values[k]) for k in keys), []).append(entity)
        for group in groups.values():
            if len(group) > 1:
                group.sort(key=lambda e: (e.rt_creation_datetime, e.rt_id))
                report.duplicates[group[0].rt_id] = [e.rt_id for e in group[1:]]
    removed = {rt_id for ids in report.duplicates.values() for rt_id in ids}
    if not dry_run:
        kept = [u for u in updates if u.rt_id not in removed]
        if kept:
            tenant.entities.update_many(kept)
        if removed:
            tenant.entities.delete(sorted(removed), erase=erase)
    return report
