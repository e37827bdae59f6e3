"""Attribute value aggregation: ``System.Bot/AttributeAggregateConfiguration`` entities.

Each configuration names target entities (``TargetCkTypeId``, optional ``FieldFilter``), the
navigation from a target to the entities to combine (``NavigationName``, e.g. ``Children``),
their attribute (``SourceAttribute``), how to combine the values (``Function``: Sum, Avg, Min,
Max, Count) and the target attribute that receives the result (``TargetAttribute``). A target
whose related entities give no value gets none (the attribute is removed; Count gives 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from workbench.bots.builtin.selection import find_all
from workbench.errors import ValidationError
from workbench.runtime.entity import EntityUpdate

__all__ = ["AGGREGATE_TYPE", "AggregateOutcome", "aggregate_attributes", "combine"]

AGGREGATE_TYPE = "System.Bot/AttributeAggregateConfiguration"


@dataclass
class AggregateOutcome:
    rt_id: str
    name: str
    targets: int
    changed: int
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def combine(function: str, values: list[Any]) -> Any:
    """``values`` combined by ``function`` (Sum, Avg, Min, Max, Count; any case)."""
    name = function.lower()
    if name == "count":
        return len(values)
    numbers = [v for v in values if v is not None]
    if not numbers:
        return None
    if name == "sum":
        return sum(numbers)
    if name == "avg":
        return sum(numbers) / len(numbers)
    if name == "min":
        return min(numbers)
    if name == "max":
        return max(numbers)
    raise ValidationError(f"aggregate function {function!r}: use Sum, Avg, Min, Max or Count")


def _name(attribute: str) -> str:
    """An attribute name as entities carry it (``energyImported`` for ``EnergyImported``)."""
    return attribute[:1].lower() + attribute[1:]


def aggregate_attributes(
    tenant: Any, *, names: list[str] | None = None, now: datetime | None = None
) -> list[AggregateOutcome]:
    """Apply every enabled configuration (or those ``names``); only changed values are
    written, each configuration's targets in one atomic batch."""
    configs = [
        c
        for c in find_all(tenant, AGGREGATE_TYPE)
        if c.attributes.get("enabled", True) is not False
        and (names is None or c.attributes.get("name") in names)
    ]
    outcomes = []
    for config in configs:
        a = config.attributes
        source, target = _name(str(a["sourceAttribute"])), _name(str(a["targetAttribute"]))
        function = str(a["function"])
        combine(function, [])  # an unknown function fails before anything is read
        targets = find_all(tenant, str(a["targetCkTypeId"]), a.get("fieldFilter"))
        updates: list[EntityUpdate] = []
        values: dict[str, Any] = {}
        for entity in targets:
            related = tenant.entities.navigate(entity.rt_id, str(a["navigationName"]))
            if function.lower() == "count":
                value = combine(function, related)
            else:
                value = combine(function, [r.attributes.get(source) for r in related])
            values[entity.rt_id] = value
            if entity.attributes.get(target) != value:
                updates.append(EntityUpdate(entity.rt_id, {target: value}))
        if updates:
            tenant.entities.update_many(updates)
        status = f"{len(updates)} of {len(targets)} targets changed"
        tenant.entities.update(
            config.rt_id,
            {"lastRunAt": (now or datetime.now(UTC)).isoformat(), "lastStatus": status},
        )
        name = str(a.get("name", config.rt_id))
        outcomes.append(AggregateOutcome(config.rt_id, name, len(targets), len(updates), values))
    return outcomes
