"""Export forms of stored attribute values (the reverse of
:func:`~workbench.runtime.values.normalize_attributes`): JSON-friendly, keyed by id or name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, overload

from workbench.ck.model import CkEnum, CkModel, CkType, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.runtime.scalars import RECORD_ID_KEY, _is_number
from workbench.runtime.timespans import format_timespan

__all__ = ["externalize_attributes"]


def _iso_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _enum_out(ck_enum: CkEnum, key: Any) -> Any:
    if not isinstance(key, int) or isinstance(key, bool):
        return key
    exact = ck_enum.by_key(key)
    if not ck_enum.use_flags:
        return exact.name if exact else key
    if exact is not None:
        return [exact.name]
    chosen, remaining = [], key
    for item in sorted(ck_enum.values, key=lambda v: v.key, reverse=True):
        if item.key and item.key & remaining == item.key:
            chosen.append(item)
            remaining &= ~item.key
    if remaining:
        return key
    return [item.name for item in sorted(chosen, key=lambda v: v.key)]


def _export_value(model: CkModel, attribute: TypeAttribute, stored: Any, by_id: bool) -> Any:
    value_type = attribute.value_type
    if value_type in (ValueType.DATETIME, ValueType.DATETIME_OFFSET) and isinstance(
        stored, datetime
    ):
        return _iso_datetime(stored)
    if value_type is ValueType.TIMESPAN and _is_number(stored):
        return format_timespan(float(stored))
    if value_type is ValueType.ENUM and attribute.attribute.enum_id in model.enums:
        return _enum_out(model.enums[attribute.attribute.enum_id], stored)
    if value_type is ValueType.RECORD:
        return _export_record(model, attribute, stored, by_id)
    if value_type is ValueType.RECORD_ARRAY and isinstance(stored, list):
        return [_export_record(model, attribute, item, by_id) for item in stored]
    if value_type is ValueType.GEOSPATIAL_POINT and isinstance(stored, Mapping):
        return {k: list(v) if isinstance(v, list) else v for k, v in stored.items()}
    if isinstance(stored, list):
        return list(stored)
    return stored


def _export_record(model: CkModel, attribute: TypeAttribute, stored: Any, by_id: bool) -> Any:
    if not isinstance(stored, Mapping):
        return stored
    record_id = stored.get(RECORD_ID_KEY) or attribute.attribute.record_id
    record = model.records.get(record_id) if isinstance(record_id, str) else None
    if record is None:
        return dict(stored)
    members = _export_members(model, record.attributes, stored, by_id)
    if by_id:
        return {"ckRecordId": record.id, "attributes": members}
    assert isinstance(members, dict)
    if RECORD_ID_KEY in stored:
        return {RECORD_ID_KEY: record.id, **members}
    return members


def _export_members(
    model: CkModel, attributes: Mapping[str, TypeAttribute], stored: Mapping[str, Any], by_id: bool
) -> list[dict[str, Any]] | dict[str, Any]:
    listed: list[dict[str, Any]] = []
    named: dict[str, Any] = {}
    for name, attribute in attributes.items():
        if name not in stored or stored[name] is None:
            continue
        value = _export_value(model, attribute, stored[name], by_id)
        if by_id:
            listed.append({"id": attribute.attribute_id, "value": value})
        else:
            named[graphql_field_name(name)] = value
    return listed if by_id else named


@overload
def externalize_attributes(
    model: CkModel,
    ck_type: CkType | str,
    stored: Mapping[str, Any],
    *,
    keyed_by: Literal["id"],
) -> list[dict[str, Any]]: ...


@overload
def externalize_attributes(
    model: CkModel,
    ck_type: CkType | str,
    stored: Mapping[str, Any],
    *,
    keyed_by: Literal["name"],
) -> dict[str, Any]: ...


def externalize_attributes(
    model: CkModel,
    ck_type: CkType | str,
    stored: Mapping[str, Any],
    *,
    keyed_by: Literal["name", "id"],
) -> list[dict[str, Any]] | dict[str, Any]:
    """Stored attribute values in an exchange form (the reverse of :func:`normalize_attributes`).

    ``keyed_by="id"``: the runtime-file list ``[{id, value}]`` with full attribute ids, records as
    ``{ckRecordId, attributes: [...]}``. ``keyed_by="name"``: a dict keyed by GraphQL field names
    (``serialNumber``), records as dicts with such keys. Both are JSON-friendly: enums by name
    (flags: a list of names), date-times as ISO 8601 strings ending in ``Z``, TimeSpans as ISO
    durations. Values appear in the type's attribute order; stored values of attributes no longer
    in the model are left out. ``normalize_attributes(externalize_attributes(x)) == x``.
    """
    resolved = model.type(ck_type) if isinstance(ck_type, str) else ck_type
    return _export_members(model, resolved.attributes, stored, keyed_by == "id")
