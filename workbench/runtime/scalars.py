"""Storage forms of single attribute values: one converter per value type, raising
:class:`_Invalid` with a reason that completes "attribute 'x' of T ...".

Internal to :mod:`workbench.runtime`; the storage form of each value type is described in
:mod:`workbench.runtime.values`.
"""

from __future__ import annotations

import base64
import binascii
import math
import numbers
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from workbench.ck.model import CkEnum, CkModel, CkRecord, TypeAttribute, ValueType
from workbench.errors import NotFound
from workbench.limits import current_limits, default_limits
from workbench.runtime.timespans import _TIMESPAN_HINT, parse_timespan

__all__ = ["RECORD_ID_KEY"]


#: key naming a derived record inside a stored record value (absent for the declared record)
RECORD_ID_KEY = "ckRecordId"

_INT_RANGES = {
    ValueType.INT: (-(2**31), 2**31 - 1),
    ValueType.INT64: (-(2**63), 2**63 - 1),
}
_ARRAY_TYPES = frozenset({ValueType.STRING_ARRAY, ValueType.INT_ARRAY, ValueType.RECORD_ARRAY})
_RECORD_TYPES = frozenset({ValueType.RECORD, ValueType.RECORD_ARRAY})


class _Invalid(Exception):
    """A value does not fit; ``reason`` completes "attribute 'x' of T ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: Any) -> str:
    if isinstance(value, datetime | date | timedelta):
        text = f"{type(value).__name__} {value}"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _to_timespan(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        try:
            return parse_timespan(value)
        except ValueError as exc:
            raise _Invalid(f"expects {_TIMESPAN_HINT}, got {_show(value)} ({exc})") from None
    raise _Invalid(f"expects {_TIMESPAN_HINT}, got {_show(value)}")


# --- scalars ----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


#: strings up to this many characters are within any sane size limit (4 UTF-8 bytes each at
#: most): the fast paths take them without asking for the configured limit
_FAST_STR = 4096


def _check_size(text: str) -> str:
    """``text`` unless it is over ``max_attribute_bytes`` (UTF-8) of the current limits."""
    if len(text) > _FAST_STR:
        limit = (current_limits() or default_limits()).max_attribute_bytes
        size = len(text) if len(text) * 4 <= limit else len(text.encode("utf-8", "replace"))
        if size > limit:
            raise _Invalid(
                f"is {size:,} bytes long, over the limit of {limit:,} bytes per value "
                "(WORKBENCH_MAX_ATTRIBUTE_BYTES); store large content as a file or binary link"
            )
    return text


def _to_string(value: Any, lenient: bool) -> str:
    if isinstance(value, str):
        return _check_size(value)
    if lenient and _is_number(value):
        return str(value)
    raise _Invalid(f"expects a string, got {_show(value)}")


def _to_bool(value: Any, lenient: bool) -> bool:
    if isinstance(value, bool):
        return value
    if lenient and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Invalid(f"expects true or false, got {_show(value)}")


def _to_int(value: Any, value_type: ValueType, lenient: bool) -> int:
    low, high = _INT_RANGES.get(value_type, _INT_RANGES[ValueType.INT])
    result: int | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    ):
        result = int(value)
    elif lenient and isinstance(value, str):
        text = value.strip()
        try:
            result = int(text)
        except ValueError:
            try:
                parsed = float(text)
            except ValueError:
                parsed = math.nan
            if math.isfinite(parsed) and parsed.is_integer():
                result = int(parsed)
    if result is None:
        hint = (
            "; give the number without quotes" if isinstance(value, str) and _numeric(value) else ""
        )
        raise _Invalid(f"expects a whole number, got {_show(value)}{hint}")
    if not low <= result <= high:
        raise _Invalid(
            f"expects a whole number between {low} and {high} ({value_type}), got {result}"
        )
    return result


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _to_double(value: Any, lenient: bool) -> float:
    result: float | None = None
    if _is_number(value):
        try:
            result = float(value)
        except OverflowError:
            result = math.inf
    elif lenient and isinstance(value, str) and _numeric(value.strip()):
        result = float(value.strip())
    if result is None:
        hint = (
            "; give the number without quotes" if isinstance(value, str) and _numeric(value) else ""
        )
        raise _Invalid(f"expects a number, got {_show(value)}{hint}")
    if not math.isfinite(result):
        raise _Invalid(f"expects a finite number, got {_show(value)}")
    return result


def _to_datetime(value: Any) -> datetime:
    example = "'2024-05-01T12:00:00Z'"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid(
                f"expects an ISO 8601 date-time with a time zone such as {example}, "
                f"got {_show(value)}"
            ) from None
    elif isinstance(value, date):
        raise _Invalid(
            f"expects a date-time with a time zone, got the date {value.isoformat()}; "
            f"write e.g. '{value.isoformat()}T00:00:00Z'"
        )
    else:
        raise _Invalid(f"expects an ISO 8601 date-time with a time zone, got {_show(value)}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Invalid(
            f"expects a date-time with a time zone, got {_show(value)} without one; "
            "add 'Z' (UTC) or an offset such as '+02:00'"
        )
    return parsed.astimezone(UTC)


def _enum_names(ck_enum: CkEnum) -> str:
    names = ", ".join(v.name for v in ck_enum.values) or "none"
    keys = ", ".join(str(v.key) for v in ck_enum.values)
    return f"{names} (or their keys {keys})" if keys else names


def _enum_key(ck_enum: CkEnum, value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        found = ck_enum.by_key(int(value))
        return found.key if found else None
    if isinstance(value, str):
        text = value.strip()
        by_name = ck_enum.by_name(text)
        if by_name is not None:
            return by_name.key
        if re.fullmatch(r"-?\d+", text):
            by_key = ck_enum.by_key(int(text))
            return by_key.key if by_key else None
    return None


def _to_enum(ck_enum: CkEnum, value: Any) -> int:
    if not ck_enum.use_flags:
        key = _enum_key(ck_enum, value)
        if key is None:
            raise _Invalid(f"expects one of {_enum_names(ck_enum)}, got {_show(value)}")
        return key
    reason = (
        f"expects a combination of {_enum_names(ck_enum)} as a list or 'A|B', got {_show(value)}"
    )
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        mask = 0
        for item in ck_enum.values:
            mask |= item.key
        if int(value) < 0 or int(value) & ~mask:
            raise _Invalid(reason)
        return int(value)
    if isinstance(value, str):
        parts: list[Any] = [part.strip() for part in value.split("|")]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise _Invalid(reason)
    result = 0
    for part in parts:
        key = _enum_key(ck_enum, part)
        if key is None:
            raise _Invalid(reason)
        result |= key
    return result


def _to_point(value: Any) -> dict[str, Any]:
    reason = (
        "expects a GeoJSON point {type: Point, coordinates: [longitude, latitude]}, "
        f"got {_show(value)}"
    )
    if (
        not isinstance(value, Mapping)
        or value.get("type") != "Point"
        or set(value)
        - {
            "type",
            "coordinates",
        }
    ):
        raise _Invalid(reason)
    coordinates = value.get("coordinates")
    if (
        not isinstance(coordinates, list | tuple)
        or len(coordinates) not in (2, 3)
        or not all(_is_number(c) and math.isfinite(float(c)) for c in coordinates)
    ):
        raise _Invalid(reason)
    lon, lat = float(coordinates[0]), float(coordinates[1])
    if not -180 <= lon <= 180:
        raise _Invalid(f"expects a longitude between -180 and 180, got {coordinates[0]!r}")
    if not -90 <= lat <= 90:
        raise _Invalid(
            f"expects a latitude between -90 and 90, got {coordinates[1]!r} "
            "(GeoJSON puts the longitude first: [lon, lat])"
        )
    return {"type": "Point", "coordinates": [float(c) for c in coordinates]}


def _to_binary(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return _check_size(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, str):
        _check_size(value)
        try:
            decoded = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            pass
        else:
            return base64.b64encode(decoded).decode("ascii")
    raise _Invalid(f"expects base64-encoded data, got {_show(value)}")


def _to_binary_link(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _Invalid(f"expects a non-empty binary reference string, got {_show(value)}")


def _to_scalar(model: CkModel, attribute: TypeAttribute, value: Any, *, lenient: bool) -> Any:
    """Storage form of a single (non-record, non-array) value, or raise :class:`_Invalid`."""
    value_type = attribute.value_type
    if value_type is ValueType.STRING:
        return _to_string(value, lenient)
    if value_type is ValueType.BOOLEAN:
        return _to_bool(value, lenient)
    if value_type in _INT_RANGES:
        return _to_int(value, value_type, lenient)
    if value_type is ValueType.DOUBLE:
        return _to_double(value, lenient)
    if value_type in (ValueType.DATETIME, ValueType.DATETIME_OFFSET):
        return _to_datetime(value)
    if value_type is ValueType.TIMESPAN:
        return _to_timespan(value)
    if value_type is ValueType.ENUM:
        return _to_enum(_enum_of(model, attribute), value)
    if value_type is ValueType.GEOSPATIAL_POINT:
        return _to_point(value)
    if value_type is ValueType.BINARY:
        return _to_binary(value)
    if value_type is ValueType.BINARY_LINKED:
        return _to_binary_link(value)
    if value_type is ValueType.STRING_ARRAY:
        return _to_list(value, lambda item: _to_string(item, lenient), "strings")
    if value_type is ValueType.INT_ARRAY:
        return _to_list(value, lambda item: _to_int(item, ValueType.INT, lenient), "whole numbers")
    raise _Invalid(f"has value type {value_type}, which is not a single value")


def _to_list(value: Any, convert: Any, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _Invalid(f"expects a list of {what}, got {_show(value)}")
    out = []
    for index, item in enumerate(value):
        try:
            out.append(convert(item))
        except _Invalid as exc:
            raise _Invalid(f"expects a list of {what}; item {index} {exc.reason}") from None
    return out


def _enum_of(model: CkModel, attribute: TypeAttribute) -> CkEnum:
    enum_id = attribute.attribute.enum_id
    try:
        return model.enum(enum_id or "")
    except NotFound:
        raise _Invalid(f"refers to enum {enum_id!r}, which is not in the model") from None


def _record_of(model: CkModel, attribute: TypeAttribute) -> CkRecord:
    record_id = attribute.attribute.record_id
    try:
        return model.record(record_id or "")
    except NotFound:
        raise _Invalid(f"refers to record {record_id!r}, which is not in the model") from None


def _record_chain(model: CkModel, record: CkRecord) -> Iterator[str]:
    seen: set[str] = set()
    current: CkRecord | None = record
    while current is not None and current.id not in seen:
        seen.add(current.id)
        yield current.id
        current = model.records.get(current.derived_from) if current.derived_from else None
