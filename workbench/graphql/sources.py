"""Resolver sources straight from stored entities (the read hot path).

Reading a page through :meth:`EntityService.find` converts every value to its exchange form
(``externalize_attributes``), which costs more than the store query itself. Here each CK type gets
a conversion plan once per schema: values whose stored form is already what GraphQL serializes
(strings, numbers, booleans, date-times, arrays, points) are copied as they are, enum keys map to
names through a dict, plain records convert recursively; only rare forms (flag enums, TimeSpans,
record arrays, derived records) go through ``externalize_attributes``. The result is the same as
``Entity.attributes`` (date-times stay ``datetime``; the DateTime scalar formats them alike).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workbench.ck.model import CkModel, CkType, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.graphql.batching import BATCH_KEY, EntityBatch
from workbench.runtime.values import RECORD_ID_KEY, externalize_attributes
from workbench.storage.base import StoredEntity

__all__ = ["SourceFactory"]

_AS_IS = frozenset(
    {
        ValueType.STRING,
        ValueType.BOOLEAN,
        ValueType.INT,
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.DATETIME,
        ValueType.DATETIME_OFFSET,
        ValueType.BINARY,
        ValueType.BINARY_LINKED,
        ValueType.STRING_ARRAY,
        ValueType.INT_ARRAY,
        ValueType.GEOSPATIAL_POINT,
    }
)
_PLAIN, _ENUM, _RECORD, _GENERIC = range(4)

# declared name, field name, kind, payload (enum names by key / record plan / attribute)
_Step = tuple[str, str, int, Any]


def _holder(name: str, attribute: TypeAttribute) -> CkType:
    """A stand-in type holding just ``attribute``, to export one value with the runtime's rules."""
    return CkType(
        id=attribute.declared_on,
        derived_from=None,
        own_attributes=[],
        own_associations=[],
        own_indexes=[],
        attributes={name: attribute},
    )


class SourceFactory:
    """Converts stored entities of one model into resolver source dicts."""

    def __init__(self, model: CkModel) -> None:
        self.model = model
        self._types: dict[str, list[_Step]] = {}
        self._records: dict[str, list[_Step]] = {}

    def _plan(self, members: Mapping[str, TypeAttribute]) -> list[_Step]:
        plan: list[_Step] = []
        for name, attribute in members.items():
            field = graphql_field_name(name)
            value_type = attribute.value_type
            enum_id, record_id = attribute.attribute.enum_id, attribute.attribute.record_id
            if value_type in _AS_IS:
                plan.append((name, field, _PLAIN, None))
            elif (
                value_type is ValueType.ENUM
                and enum_id in self.model.enums
                and not self.model.enums[enum_id].use_flags
            ):
                names = {v.key: v.name for v in self.model.enums[enum_id].values}
                plan.append((name, field, _ENUM, names))
            elif value_type is ValueType.RECORD and record_id in self.model.records:
                # the record's own plan is filled in on first use (records may nest)
                plan.append((name, field, _RECORD, [record_id, _holder(name, attribute), None]))
            else:
                plan.append((name, field, _GENERIC, _holder(name, attribute)))
        return plan

    def _type_plan(self, type_id: str) -> list[_Step] | None:
        plan = self._types.get(type_id)
        if plan is None:
            ck_type = self.model.types.get(type_id)
            if ck_type is None:
                return None
            plan = self._types[type_id] = self._plan(ck_type.attributes)
        return plan

    def _record_plan(self, record_id: str) -> list[_Step]:
        plan = self._records.get(record_id)
        if plan is None:
            plan = self._records[record_id] = self._plan(self.model.records[record_id].attributes)
        return plan

    def _convert(self, plan: list[_Step], stored: Mapping[str, Any], out: dict[str, Any]) -> None:
        for name, field, kind, payload in plan:
            value = stored.get(name)
            if value is None:
                continue
            if kind == _PLAIN:
                out[field] = value
            elif kind == _ENUM:
                out[field] = payload.get(value, value)
            elif kind == _RECORD and type(value) is dict and RECORD_ID_KEY not in value:
                record_plan = payload[2]
                if record_plan is None:
                    record_plan = payload[2] = self._record_plan(payload[0])
                record: dict[str, Any] = {}
                self._convert(record_plan, value, record)
                out[field] = record
            else:
                holder: CkType = payload if kind == _GENERIC else payload[1]
                out[field] = externalize_attributes(
                    self.model, holder, {name: value}, keyed_by="name"
                ).get(field)

    def source(self, stored: StoredEntity, batch: EntityBatch) -> dict[str, Any]:
        out: dict[str, Any] = {}
        plan = self._type_plan(stored.ck_type_id)
        if plan is not None:
            self._convert(plan, stored.attributes, out)
        else:  # a type no longer in the model: show what is there
            out.update((graphql_field_name(k), v) for k, v in stored.attributes.items())
        out["rtId"] = stored.rt_id
        out["ckTypeId"] = stored.ck_type_id
        out["rtWellKnownName"] = stored.rt_well_known_name
        out["rtVersion"] = stored.rt_version
        out["rtCreationDateTime"] = stored.rt_creation_datetime
        out["rtChangedDateTime"] = stored.rt_changed_datetime
        out[BATCH_KEY] = batch
        return out

    def sources(self, stored: Sequence[StoredEntity]) -> list[dict[str, Any]]:
        """Sources of entities resolved together (one batch)."""
        batch = EntityBatch([s.rt_id for s in stored])
        return [self.source(s, batch) for s in stored]
