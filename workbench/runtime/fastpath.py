"""Compiled plans: the fast path of :func:`~workbench.runtime.values.normalize_attributes`.

Most input is plain and valid: known keys, values of the exact Python type the storage form
uses. For each (model, type) a plan maps every key spelling to a converter that accepts those
values with a few ``type(x) is`` checks and hands anything else to the general conversion
of :mod:`workbench.runtime.scalars`. The fast path never reports an error itself: on the first
irregularity (unknown or duplicate key, null, invalid value, missing required attribute) it
gives up and the exact path (:class:`~workbench.runtime.normalizer._Normalizer`) runs from the
start, so messages are unchanged.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from workbench.ck.model import CkModel, CkType, TypeAttribute, ValueType
from workbench.errors import ErrorCollector
from workbench.runtime.normalizer import _MISSING, _lookup, _match, _Normalizer
from workbench.runtime.scalars import (
    _ARRAY_TYPES,
    _FAST_STR,
    _INT_RANGES,
    _RECORD_TYPES,
    _Invalid,
    _to_scalar,
)

__all__ = ["fast_normalize"]


_Convert = Any  # Callable[[Any], Any] raising _Invalid; None for records (see _fast_members)


def _general(model: CkModel, attribute: TypeAttribute) -> _Convert:
    def convert(raw: Any) -> Any:
        return _to_scalar(model, attribute, raw, lenient=False)

    return convert


def _fast_converter(model: CkModel, attribute: TypeAttribute) -> _Convert:
    """A converter equal to ``_to_scalar(model, attribute, raw, lenient=False)``."""
    value_type = attribute.value_type
    general = _general(model, attribute)
    if value_type in _RECORD_TYPES:
        return None
    if value_type is ValueType.STRING:

        def string(raw: Any) -> Any:
            return raw if type(raw) is str and len(raw) <= _FAST_STR else general(raw)

        return string
    if value_type is ValueType.BOOLEAN:

        def boolean(raw: Any) -> Any:
            return raw if raw is True or raw is False else general(raw)

        return boolean
    if value_type in _INT_RANGES:
        low, high = _INT_RANGES[value_type]

        def whole(raw: Any) -> Any:
            return raw if type(raw) is int and low <= raw <= high else general(raw)

        return whole
    if value_type is ValueType.DOUBLE:
        isfinite = math.isfinite

        def double(raw: Any) -> Any:
            return raw if type(raw) is float and isfinite(raw) else general(raw)

        return double
    if value_type in (ValueType.DATETIME, ValueType.DATETIME_OFFSET):

        def moment(raw: Any) -> Any:
            # astimezone(UTC) of a datetime already in UTC is that datetime
            return raw if type(raw) is datetime and raw.tzinfo is UTC else general(raw)

        return moment
    if value_type is ValueType.ENUM:
        ck_enum = model.enums.get(attribute.attribute.enum_id or "")
        if ck_enum is None or ck_enum.use_flags:
            return general
        by_lower: dict[str, int] = {}
        for item in ck_enum.values:
            by_lower.setdefault(item.name.lower(), item.key)  # by_name: the first match wins
        # spellings that by_name resolves without stripping: declared names and lower case
        names = {
            spelling: by_lower[item.name.lower()]
            for item in ck_enum.values
            for spelling in (item.name, item.name.lower())
            if spelling == spelling.strip()
        }
        keys = frozenset(item.key for item in ck_enum.values)

        def enum(raw: Any) -> Any:
            if type(raw) is str:
                key = names.get(raw)
                if key is not None:
                    return key
            elif type(raw) is int and raw in keys:
                return raw
            return general(raw)

        return enum
    if value_type is ValueType.STRING_ARRAY:

        def strings(raw: Any) -> Any:
            if type(raw) is list:
                for item in raw:
                    if type(item) is not str or len(item) > _FAST_STR:
                        return general(raw)
                return list(raw)
            return general(raw)

        return strings
    if value_type is ValueType.INT_ARRAY:
        low, high = _INT_RANGES[ValueType.INT]

        def wholes(raw: Any) -> Any:
            if type(raw) is list:
                for item in raw:
                    if type(item) is not int or not low <= item <= high:
                        return general(raw)
                return list(raw)
            return general(raw)

        return wholes
    return general


class _Slot:
    """One attribute of a plan."""

    __slots__ = ("attribute", "convert", "exact", "field_name", "name")

    def __init__(self, model: CkModel, attribute: TypeAttribute, field_name: str) -> None:
        self.attribute = attribute
        self.name = attribute.name
        self.field_name = field_name
        self.convert = _fast_converter(model, attribute)
        #: values of exactly this type are their own storage form (no call needed)
        self.exact: type | None = {ValueType.STRING: str, ValueType.BOOLEAN: bool}.get(
            attribute.value_type
        )


class _TypePlan:
    """What the fast path needs to know about one type of one resolved model."""

    __slots__ = ("by_id", "by_name", "model", "slots", "source")

    def __init__(self, model: CkModel, ck_type: CkType) -> None:
        self.model = model  # keeps both alive, so their id()s stay unique while cached
        self.source = ck_type
        attributes = ck_type.attributes
        lookup = _lookup(attributes)
        self.slots = [
            _Slot(model, attribute, lookup.field_names[name])
            for name, attribute in attributes.items()
        ]
        by_attribute = {id(slot.attribute): slot for slot in self.slots}
        # every spelling _match resolves for keyed_by="name", resolved the way _match does
        self.by_name: dict[str, _Slot] = {}
        for slot in self.slots:
            for spelling in (slot.name, slot.name.lower(), slot.field_name):
                found = _match(attributes, spelling, "name")
                if found is not None:
                    self.by_name[spelling] = by_attribute[id(found)]
        self.by_id = {
            attribute_id: by_attribute[id(attribute)]
            for attribute_id, attribute in lookup.by_id.items()
        }


_PLANS: dict[tuple[int, int], _TypePlan] = {}


def _plan(model: CkModel, ck_type: CkType) -> _TypePlan:
    # resolved models are not changed once built (see _lookup): one plan per (model, type)
    key = (id(model), id(ck_type))
    found = _PLANS.get(key)
    if found is None or found.model is not model or found.source is not ck_type:
        if len(_PLANS) > 4096:
            _PLANS.clear()
        found = _PLANS[key] = _TypePlan(model, ck_type)
    return found


def _fast_members(
    plan: _TypePlan, values: Any, keyed_by: Literal["name", "id"], partial: bool
) -> dict[str, Any] | None:
    """The storage form of plain, valid ``values``; None when the exact path must decide."""
    if type(values) is not dict:
        return None
    slots = plan.by_id if keyed_by == "id" else plan.by_name  # as _match decides
    out: dict[str, Any] = {}
    records: _Normalizer | None = None
    for key, raw in values.items():
        slot = slots.get(key)  # only str keys are in it (a str subclass matches like a str)
        if slot is None or raw is None:
            return None
        name = slot.name
        if name in out:
            return None
        if type(raw) is slot.exact and (raw.__class__ is bool or len(raw) <= _FAST_STR):  # type: ignore[arg-type]
            out[name] = raw
            continue
        convert = slot.convert
        try:
            if convert is not None:
                out[name] = convert(raw)
                continue
        except _Invalid:
            return None
        if records is None:
            records = _Normalizer(plan.model, plan.source.id, None, ErrorCollector())
        value = records.value(slot.attribute, raw, slot.field_name)
        if value is _MISSING or records.errors.details:
            return None
        out[slot.name] = value
    if partial or len(out) == len(plan.slots):
        return out
    for slot in plan.slots:
        if slot.name in out:
            continue
        attribute = slot.attribute
        defaults = attribute.defaults
        if not defaults:
            if attribute.is_optional:
                continue
            return None  # required but missing: the exact path reports it
        if records is None:
            records = _Normalizer(plan.model, plan.source.id, None, ErrorCollector())
        raw_default = defaults if attribute.value_type in _ARRAY_TYPES else defaults[0]
        value = records.value(attribute, raw_default, slot.field_name)
        if value is _MISSING or records.errors.details:
            return None
        out[slot.name] = value
    return out


def fast_normalize(
    model: CkModel,
    ck_type: CkType,
    values: Any,
    keyed_by: Literal["name", "id"] = "name",
    partial: bool = False,
) -> dict[str, Any] | None:
    """:func:`normalize_attributes` of plain, valid ``values`` (known keys, values of the types
    their storage forms use); None when it cannot tell, and normalize_attributes must decide
    (and report). For bulk callers: it skips normalize_attributes' argument handling."""
    key = (id(model), id(ck_type))
    plan = _PLANS.get(key)
    if plan is None or plan.model is not model or plan.source is not ck_type:
        plan = _plan(model, ck_type)
    return _fast_members(plan, values, keyed_by, partial)
