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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workbench.ck.model import CkModel, CkType, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.graphql.batching import BATCH_KEY, EntityBatch
from workbench.graphql.direct import Selections
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

# declared name, field name, kind, payload (enum names by key / (record id, holder) / holder)
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
    """Converts stored entities of one model into resolver source dicts.

    Each type's plan is compiled once into a function of straight-line code (one dict lookup
    per attribute, no per-attribute dispatch); the generated code embeds only ``repr`` of
    attribute and field names and reaches everything else through its namespace.
    """

    def __init__(self, model: CkModel) -> None:
        self.model = model
        self._types: dict[str, Callable[[StoredEntity, EntityBatch], dict[str, Any]] | None] = {}
        self._records: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {}
        self._direct_plans: dict[str, dict[str, tuple[str, dict[Any, str] | None]] | None] = {}
        #: the analyses of list selections completed directly (:mod:`.direct`)
        self.direct_selections = Selections()

    def direct_plan(self, type_id: str) -> dict[str, tuple[str, dict[Any, str] | None]] | None:
        """The attributes of ``type_id`` whose stored value is their source value (as is, or an
        enum key named through the dict given): by field name, the attribute's name and that
        dict (None: as is). None for a type not in the model."""
        try:
            return self._direct_plans[type_id]
        except KeyError:
            pass
        ck_type = self.model.types.get(type_id)
        plan: dict[str, tuple[str, dict[Any, str] | None]] | None = None
        if ck_type is not None:
            plan = {}
            for name, field, kind, payload in self._plan(ck_type.attributes):
                if kind == _PLAIN:
                    plan[field] = (name, None)
                elif kind == _ENUM:
                    plan[field] = (name, payload)
        self._direct_plans[type_id] = plan
        return plan

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
                plan.append((name, field, _RECORD, (record_id, _holder(name, attribute))))
            else:
                plan.append((name, field, _GENERIC, _holder(name, attribute)))
        return plan

    def _generic(self, holder: CkType, name: str, field: str) -> Callable[[Any], Any]:
        model = self.model

        def convert(value: Any) -> Any:
            return externalize_attributes(model, holder, {name: value}, keyed_by="name").get(field)

        return convert

    def _record(
        self, record_id: str, holder: CkType, name: str, field: str
    ) -> Callable[[Any], Any]:
        """A plain record value converted by the record's plan (compiled on first use: records
        may nest); a derived record (or anything not a dict) by the runtime's rules."""
        generic = self._generic(holder, name, field)
        compiled: list[Callable[[Mapping[str, Any]], dict[str, Any]]] = []

        def convert(value: Any) -> Any:
            if type(value) is dict and RECORD_ID_KEY not in value:
                if not compiled:
                    compiled.append(self._record_source(record_id))
                return compiled[0](value)
            return generic(value)

        return convert

    def _record_source(self, record_id: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        compiled = self._records.get(record_id)
        if compiled is None:
            members = self.model.records[record_id].attributes
            compiled = self._records[record_id] = self._compile(self._plan(members))
        return compiled

    def _compile(self, plan: list[_Step], *, entity: bool = False) -> Callable[..., dict[str, Any]]:
        """``convert(attributes) -> dict`` for a record, ``source(stored, batch) -> dict`` for an
        entity type (``entity=True``), from ``plan``."""
        namespace: dict[str, Any] = {"_BATCH_KEY": BATCH_KEY}
        if entity:
            lines = ["def convert(stored, batch):", "    get = stored.attributes.get"]
        else:
            lines = ["def convert(attributes):", "    get = attributes.get"]
        lines.append("    out = {}")
        for index, (name, field, kind, payload) in enumerate(plan):
            var = f"v{index}"
            lines.append(f"    {var} = get({name!r})")
            lines.append(f"    if {var} is not None:")
            if kind == _PLAIN:
                lines.append(f"        out[{field!r}] = {var}")
            elif kind == _ENUM:
                namespace[f"_names{index}"] = payload
                lines.append(f"        out[{field!r}] = _names{index}.get({var}, {var})")
            else:
                convert = (
                    self._record(payload[0], payload[1], name, field)
                    if kind == _RECORD
                    else self._generic(payload, name, field)
                )
                namespace[f"_convert{index}"] = convert
                lines.append(f"        out[{field!r}] = _convert{index}({var})")
        if entity:
            lines += [
                "    out['rtId'] = stored.rt_id",
                "    out['ckTypeId'] = stored.ck_type_id",
                "    out['rtWellKnownName'] = stored.rt_well_known_name",
                "    out['rtVersion'] = stored.rt_version",
                "    out['rtCreationDateTime'] = stored.rt_creation_datetime",
                "    out['rtChangedDateTime'] = stored.rt_changed_datetime",
                "    out[_BATCH_KEY] = batch",
            ]
        lines.append("    return out")
        exec("\n".join(lines), namespace)  # generated from CK names (repr) only
        compiled: Callable[..., dict[str, Any]] = namespace["convert"]
        return compiled

    def _type_source(
        self, type_id: str
    ) -> Callable[[StoredEntity, EntityBatch], dict[str, Any]] | None:
        try:
            return self._types[type_id]
        except KeyError:
            pass
        ck_type = self.model.types.get(type_id)
        compiled = (
            None if ck_type is None else self._compile(self._plan(ck_type.attributes), entity=True)
        )
        self._types[type_id] = compiled
        return compiled

    def source(self, stored: StoredEntity, batch: EntityBatch) -> dict[str, Any]:
        compiled = self._type_source(stored.ck_type_id)
        if compiled is not None:
            return compiled(stored, batch)
        # a type no longer in the model: show what is there
        out: dict[str, Any] = {graphql_field_name(k): v for k, v in stored.attributes.items()}
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
        types = self._types
        out: list[dict[str, Any]] = []
        append = out.append
        for item in stored:
            compiled = types.get(item.ck_type_id)
            if compiled is None:
                append(self.source(item, batch))
            else:
                append(compiled(item, batch))
        return out
