"""Attribute values of runtime entities: validation, storage forms and export forms.

Pure functions over the resolved model, no I/O. :func:`normalize_attributes` turns user input
(GraphQL, Python, runtime files) into the storage form kept in
:attr:`~workbench.storage.base.StoredEntity.attributes` (keyed by each attribute's *declared*
name on the type); :func:`externalize_attributes` is the reverse for export and display;
:func:`coerce_value` turns a filter's comparison value into the storage form.

Storage form per value type:

============================  ===============================================================
String, BinaryLinked          ``str`` (BinaryLinked: a non-empty reference)
Boolean                       ``bool``
Int / Int64                   ``int`` in the signed 32-bit / 64-bit range
Double                        finite ``float``
DateTime, DateTimeOffset      timezone-aware ``datetime`` in UTC (the input offset is not kept)
TimeSpan                      ``float`` seconds, signed: compares and sorts like the duration;
                              exported as an ISO 8601 duration (``PT15M``)
Enum                          the ``int`` key; for ``useFlags`` enums the OR of the keys
Record                        ``dict`` keyed by the record's declared attribute names; a value
                              of a record *derived* from the declared one also holds
                              ``"ckRecordId"`` (:data:`RECORD_ID_KEY`) naming it
RecordArray                   ``list`` of such dicts
StringArray / IntArray        ``list[str]`` / ``list[int]`` (elements checked as Int, 32-bit)
GeospatialPoint               ``{"type": "Point", "coordinates": [lon, lat]}`` with floats
Binary                        canonical base64 ``str``
============================  ===============================================================
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, overload

from workbench.ck.model import CkEnum, CkModel, CkRecord, CkType, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.errors import ErrorCollector, ErrorDetail, NotFound, ValidationError
from workbench.limits import current_limits, default_limits
from workbench.query.model import Operator

__all__ = [
    "RECORD_ID_KEY",
    "applicable_operators",
    "coerce_value",
    "externalize_attributes",
    "fast_normalize",
    "find_attribute",
    "format_timespan",
    "normalize_attributes",
    "parse_timespan",
    "split_list_value",
]

#: key naming a derived record inside a stored record value (absent for the declared record)
RECORD_ID_KEY = "ckRecordId"

_INT_RANGES = {
    ValueType.INT: (-(2**31), 2**31 - 1),
    ValueType.INT64: (-(2**63), 2**63 - 1),
}
_ARRAY_TYPES = frozenset({ValueType.STRING_ARRAY, ValueType.INT_ARRAY, ValueType.RECORD_ARRAY})
_RECORD_TYPES = frozenset({ValueType.RECORD, ValueType.RECORD_ARRAY})

_NULL_OPS = frozenset({Operator.IS_NULL, Operator.IS_NOT_NULL})
_EQUALITY_OPS = _NULL_OPS | {Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN, Operator.NOT_IN}
_ORDER_OPS = _EQUALITY_OPS | {
    Operator.LESS_THAN,
    Operator.LESS_EQUAL_THAN,
    Operator.GREATER_THAN,
    Operator.GREATER_EQUAL_THAN,
    Operator.BETWEEN,
}
_PATTERN_OPS = frozenset({Operator.LIKE, Operator.MATCH_REG_EX})
_LIST_OPS = frozenset({Operator.IN, Operator.NOT_IN, Operator.BETWEEN})

_OPERATORS: dict[ValueType, frozenset[Operator]] = {
    ValueType.STRING: _ORDER_OPS | _PATTERN_OPS,
    ValueType.BINARY_LINKED: _EQUALITY_OPS | _PATTERN_OPS,
    ValueType.BOOLEAN: _EQUALITY_OPS,
    ValueType.INT: _ORDER_OPS,
    ValueType.INT64: _ORDER_OPS,
    ValueType.DOUBLE: _ORDER_OPS,
    ValueType.DATETIME: _ORDER_OPS,
    ValueType.DATETIME_OFFSET: _ORDER_OPS,
    ValueType.TIMESPAN: _ORDER_OPS,
    ValueType.ENUM: _EQUALITY_OPS,
    ValueType.STRING_ARRAY: _NULL_OPS | {Operator.ANY_EQ, Operator.ANY_LIKE},
    ValueType.INT_ARRAY: _NULL_OPS | {Operator.ANY_EQ},
    ValueType.RECORD: _NULL_OPS,
    ValueType.RECORD_ARRAY: _NULL_OPS,
    ValueType.GEOSPATIAL_POINT: _NULL_OPS,
    ValueType.BINARY: _NULL_OPS,
}


def applicable_operators(value_type: ValueType) -> list[Operator]:
    """The filter operators that apply to attributes of ``value_type``, in declaration order.

    Ordered comparisons and ``BETWEEN`` fit numbers, dates, TimeSpans and strings; ``LIKE`` and
    ``MATCH_REG_EX`` fit strings; ``ANY_EQ``/``ANY_LIKE`` fit arrays; records, points and binary
    values can only be tested with ``IS_NULL``/``IS_NOT_NULL``.
    """
    allowed = _OPERATORS[value_type]
    return [op for op in Operator if op in allowed]


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


# --- TimeSpan ---------------------------------------------------------------------------------

_ISO_DURATION = re.compile(
    r"(?P<sign>[-+])?P(?!$)"
    r"(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?!$)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)
_DOTNET_TIMESPAN = re.compile(
    r"(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{2})"
    r"(?::(?P<seconds>\d{2})(?:\.(?P<fraction>\d{1,7}))?)?"
)
_UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_TIMESPAN_HINT = "a duration such as 'PT15M', 'P1DT2H' or '1.02:00:00'"


def parse_timespan(text: str) -> float:
    """Seconds of an ISO 8601 duration (``PT15M``, ``-P1DT2H30.5S``, ``P2W``) or a .NET TimeSpan
    (``[-][d.]hh:mm[:ss[.fffffff]]``). Years and months are rejected (no fixed length).

    Raises ``ValueError`` saying which forms are accepted.
    """
    stripped = text.strip()
    iso = _ISO_DURATION.fullmatch(stripped)
    if iso is not None and iso.group(0):
        if iso["years"] or iso["months"]:
            raise ValueError(
                f"duration {text!r} uses years or months, which have no fixed length; "
                "give days instead (e.g. 'P30D')"
            )
        total = sum(
            (Decimal(iso[unit].replace(",", ".")) * factor)
            for unit, factor in _UNIT_SECONDS.items()
            if iso[unit]
        )
        return float(-total if iso["sign"] == "-" else total)
    dotnet = _DOTNET_TIMESPAN.fullmatch(stripped)
    if dotnet is not None:
        hours, minutes = int(dotnet["hours"]), int(dotnet["minutes"])
        seconds = int(dotnet["seconds"] or 0)
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ValueError(f"duration {text!r} has hours > 23, minutes > 59 or seconds > 59")
        total = Decimal(
            int(dotnet["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
        ) + Decimal(f"0.{dotnet['fraction'] or 0}")
        return float(-total if dotnet["sign"] else total)
    raise ValueError(f"{text!r} is not {_TIMESPAN_HINT}")


def format_timespan(seconds: float) -> str:
    """The ISO 8601 duration of ``seconds`` (``PT15M``, ``P1DT2H``, ``-PT0.5S``, ``PT0S``);
    :func:`parse_timespan` gives back exactly ``seconds``."""
    exact = Decimal(repr(float(seconds)))
    sign = "-" if exact < 0 else ""
    exact = abs(exact)
    days, rest = divmod(exact, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    out = f"{sign}P{int(days)}D" if days else f"{sign}P"
    clock = ""
    if hours:
        clock += f"{int(hours)}H"
    if minutes:
        clock += f"{int(minutes)}M"
    if rest or not (days or clock):
        text = format(rest.normalize(), "f") if rest else "0"
        clock += f"{text}S"
    return f"{out}T{clock}" if clock else out


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


# --- normalisation ----------------------------------------------------------------------------

_MISSING = object()


@dataclass
class _Normalizer:
    model: CkModel
    owner: str
    location: str | None
    errors: ErrorCollector

    def fail(self, path: str, reason: str) -> None:
        self.errors.add(f"attribute '{path}' of {self.owner} {reason}", self.location, path)

    def members(
        self,
        container: str,
        attributes: Mapping[str, TypeAttribute],
        values: Any,
        *,
        keyed_by: Literal["name", "id"],
        partial: bool,
        prefix: str,
    ) -> dict[str, Any]:
        """Validate the attribute values of a type or record; ``prefix`` is the path so far."""
        out: dict[str, Any] = {}
        seen: dict[str, str] = {}
        field_names = _lookup(attributes).field_names
        for key, raw in self.entries(container, values, keyed_by, prefix):
            attribute = _match(attributes, key, keyed_by)
            if attribute is None:
                self.unknown(container, attributes, key, keyed_by, prefix)
                continue
            path = prefix + field_names[attribute.name]
            if attribute.name in seen:
                self.fail(path, f"is given twice (as {seen[attribute.name]!r} and {key!r})")
                continue
            seen[attribute.name] = key
            if raw is None:
                if not attribute.is_optional:
                    self.fail(path, "is required and cannot be null")
                continue
            value = self.value(attribute, raw, path)
            if value is not _MISSING:
                out[attribute.name] = value
        if partial:
            return out
        for attribute in attributes.values():
            if attribute.name in seen:
                continue
            path = prefix + field_names[attribute.name]
            defaults = attribute.defaults
            if defaults:
                raw_default = defaults if attribute.value_type in _ARRAY_TYPES else defaults[0]
                value = self.value(attribute, raw_default, path)
                if value is not _MISSING:
                    out[attribute.name] = value
            elif not attribute.is_optional:
                self.fail(path, "is required but missing")
        return out

    def entries(
        self, container: str, values: Any, keyed_by: Literal["name", "id"], prefix: str
    ) -> list[tuple[str, Any]]:
        if isinstance(values, Mapping):
            entries = []
            for key, raw in values.items():
                if not isinstance(key, str):
                    self.errors.add(
                        f"attribute keys of {container} must be strings, got {key!r}",
                        self.location,
                        prefix.rstrip(".") or None,
                    )
                    continue
                entries.append((key, raw))
            return entries
        if keyed_by == "id" and isinstance(values, list | tuple):
            entries = []
            for index, item in enumerate(values):
                if (
                    not isinstance(item, Mapping)
                    or not isinstance(item.get("id"), str)
                    or set(item) - {"id", "value"}
                ):
                    self.errors.add(
                        f"attribute entry {index} of {container} must be {{id, value}} with a "
                        f"full attribute id such as 'Lib/Attribute', got {_show(item)}",
                        self.location,
                        prefix.rstrip(".") or None,
                    )
                    continue
                entries.append((item["id"], item.get("value")))
            return entries
        expected = "a mapping or a list of {id, value}" if keyed_by == "id" else "a mapping"
        self.errors.add(
            f"attributes of {container} must be {expected}, got {_show(values)}",
            self.location,
            prefix.rstrip(".") or None,
        )
        return []

    def unknown(
        self,
        container: str,
        attributes: Mapping[str, TypeAttribute],
        key: str,
        keyed_by: Literal["name", "id"],
        prefix: str,
    ) -> None:
        where = f" (at '{prefix.rstrip('.')}')" if prefix else ""
        if keyed_by == "id":
            known = ", ".join(sorted(a.attribute_id for a in attributes.values())) or "none"
            message = (
                f"{container}{where} has no attribute with id {key!r}; its attribute ids are: "
                f"{known}"
            )
        else:
            known = ", ".join(sorted(graphql_field_name(name) for name in attributes)) or "none"
            message = f"{container}{where} has no attribute {key!r}; its attributes are: {known}"
        self.errors.add(message, self.location, prefix + key)

    def value(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        """The storage form of one attribute value, or ``_MISSING`` after recording errors."""
        try:
            if attribute.value_type is ValueType.RECORD:
                return self.record(attribute, raw, path)
            if attribute.value_type is ValueType.RECORD_ARRAY:
                if not isinstance(raw, list | tuple):
                    raise _Invalid(f"expects a list of records, got {_show(raw)}")
                items = [
                    self.element(attribute, item, f"{path}[{i}]") for i, item in enumerate(raw)
                ]
                return _MISSING if any(item is _MISSING for item in items) else items
            return _to_scalar(self.model, attribute, raw, lenient=False)
        except _Invalid as exc:
            self.fail(path, exc.reason)
            return _MISSING

    def element(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        """One record of a RecordArray, or ``_MISSING`` after recording its errors."""
        try:
            return self.record(attribute, raw, path)
        except _Invalid as exc:
            self.fail(path, exc.reason)
            return _MISSING

    def record(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        declared = _record_of(self.model, attribute)
        if not isinstance(raw, Mapping):
            raise _Invalid(f"expects a record {declared.id} (a mapping), got {_show(raw)}")
        record = declared
        given_id = raw.get(RECORD_ID_KEY)
        if given_id is not None and given_id != declared.id:
            found = self.model.records.get(given_id) if isinstance(given_id, str) else None
            if found is None or declared.id not in _record_chain(self.model, found):
                raise _Invalid(
                    f"expects a record {declared.id} or one derived from it, got ckRecordId "
                    f"{given_id!r}"
                )
            record = found
        body: Any
        keyed_by: Literal["name", "id"]
        if isinstance(raw.get("attributes"), list):
            body, keyed_by = raw["attributes"], "id"
            extra = set(raw) - {RECORD_ID_KEY, "attributes"}
            if extra:
                raise _Invalid(
                    f"has unexpected keys {sorted(extra)} next to ckRecordId and attributes"
                )
        else:
            body = {k: v for k, v in raw.items() if k != RECORD_ID_KEY}
            keyed_by = "name"
        before = len(self.errors.details)
        out = self.members(
            f"record {record.id}",
            record.attributes,
            body,
            keyed_by=keyed_by,
            partial=False,
            prefix=path + ".",
        )
        if len(self.errors.details) > before:
            return _MISSING
        if record.id != declared.id:
            out[RECORD_ID_KEY] = record.id
        return out


class _Lookup:
    """Name and id lookups over one (immutable, resolved) attribute mapping."""

    __slots__ = ("by_id", "by_lower", "field_names", "source")

    def __init__(self, attributes: Mapping[str, TypeAttribute]) -> None:
        self.source = attributes  # keeps the mapping alive, so its id() stays unique
        self.by_id = {a.attribute_id: a for a in attributes.values()}
        self.by_lower = {name.lower(): a for name, a in attributes.items()}
        self.field_names = {name: graphql_field_name(name) for name in attributes}


_LOOKUPS: dict[int, _Lookup] = {}


def _lookup(attributes: Mapping[str, TypeAttribute]) -> _Lookup:
    # resolved models never change their attribute mappings, so one lookup per mapping suffices
    found = _LOOKUPS.get(id(attributes))
    if found is None or found.source is not attributes:
        if len(_LOOKUPS) > 4096:
            _LOOKUPS.clear()
        found = _LOOKUPS[id(attributes)] = _Lookup(attributes)
    return found


def _match(
    attributes: Mapping[str, TypeAttribute], key: str, keyed_by: Literal["name", "id"]
) -> TypeAttribute | None:
    lookup = _lookup(attributes)
    if keyed_by == "id":
        return lookup.by_id.get(key)
    return attributes.get(key) or lookup.by_lower.get(key.lower())


def find_attribute(attributes: Mapping[str, TypeAttribute], name: str) -> TypeAttribute | None:
    """The attribute called ``name``: the declared name, its GraphQL form or any casing."""
    return attributes.get(name) or _lookup(attributes).by_lower.get(name.lower())


# --- compiled plans: the fast path of normalize_attributes ------------------------------------
#
# Most input is plain and valid: known keys, values of the exact Python type the storage form
# uses. For each (model, type) a plan maps every key spelling to a converter that accepts those
# values with a few ``type(x) is`` checks and hands anything else to the general conversion
# above. The fast path never reports an error itself: on the first irregularity (unknown or
# duplicate key, null, invalid value, missing required attribute) it gives up and the exact
# path (:class:`_Normalizer`) runs from the start, so messages are unchanged.

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


def normalize_attributes(
    model: CkModel,
    ck_type: CkType | str,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    keyed_by: Literal["name", "id"] = "name",
    partial: bool = False,
    location: str = "",
    errors: ErrorCollector | None = None,
) -> dict[str, Any]:
    """Validate attribute values of an entity of ``ck_type``; return them in storage form,
    keyed by declared name (see the module docstring for each value type's form).

    ``values`` are keyed by attribute name (declared ``SerialNumber`` or GraphQL ``serialNumber``,
    any casing) or, with ``keyed_by="id"``, by full attribute id (``Demo.Energy/SerialNumber``);
    with ids a runtime-file list ``[{id, value}]`` is accepted too. Records may be plain mappings
    by name or the runtime-file form ``{ckRecordId, attributes: [{id, value}]}``.

    Unknown attributes are rejected. Unless ``partial`` (an update with some attributes only),
    missing attributes get their defaults and missing required ones are errors. ``None`` for an
    optional attribute means absent (left out of the result); for a required one it is an error.

    Every problem is collected; they are raised together as one :class:`ValidationError` whose
    details carry ``location`` (``entities[3]``, an rtId) and the attribute path
    (``phaseL1.voltage``). When ``errors`` is given, problems are added to it instead and
    nothing is raised (the result then holds only the valid values).
    """
    resolved = model.type(ck_type) if isinstance(ck_type, str) else ck_type
    fast = fast_normalize(model, resolved, values, keyed_by, partial)
    if fast is not None:
        return fast
    collector = errors if errors is not None else ErrorCollector()
    before = len(collector.details)
    normalizer = _Normalizer(model, resolved.id, location or None, collector)
    out = normalizer.members(
        resolved.id, resolved.attributes, values, keyed_by=keyed_by, partial=partial, prefix=""
    )
    if errors is None:
        count = len(collector.details) - before
        where = f"{location}: " if location else ""
        plural = "s" if count != 1 else ""
        collector.raise_if_any(
            ValidationError, f"{where}{count} invalid attribute value{plural} for {resolved.id}"
        )
    return out


# --- export -----------------------------------------------------------------------------------


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


# --- filter values ----------------------------------------------------------------------------


def split_list_value(raw: Any) -> list[Any]:
    """The items of a list-valued filter argument: a list as is; a string holding a JSON list
    (``'[230, 240]'``) or comma-separated items (``"a, 'b,c', d"``: quotes keep commas, are
    removed, and keep surrounding spaces); any other single value as a one-item list."""
    if isinstance(raw, list | tuple):
        return list(raw)
    if not isinstance(raw, str):
        return [raw]
    text = raw.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{raw!r} is not a valid JSON list: {exc.msg}") from None
        if not isinstance(parsed, list):
            raise ValueError(f"{raw!r} is not a JSON list")
        return parsed
    if not text:
        return []
    items: list[str] = []
    current: list[str] = []
    quote: str | None = None
    quoted = False
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "'\"" and not "".join(current).strip():
            quote, quoted, current = char, True, []
        elif char == ",":
            items.append("".join(current) if quoted else "".join(current).strip())
            current, quoted = [], False
        elif not (quoted and char.isspace()):
            current.append(char)
    if quote is not None:
        raise ValueError(f"{raw!r} has an unclosed quote")
    items.append("".join(current) if quoted else "".join(current).strip())
    return items


def coerce_value(
    model: CkModel,
    type_attribute: TypeAttribute,
    raw: Any,
    operator: Operator,
    *,
    path: str | None = None,
    owner: str | None = None,
) -> Any:
    """The storage form of a filter comparison value for ``type_attribute`` under ``operator``.

    Strings (from the CLI) are converted: numbers, ``true``/``false``, ISO date-times with a
    zone, TimeSpans, enum names or keys (flags: ``'A|B'``). ``IN``/``NOT_IN``/``BETWEEN`` take a
    list, a JSON list string or comma-separated items (``BETWEEN``: exactly two); ``LIKE``,
    ``MATCH_REG_EX`` and ``ANY_LIKE`` keep the pattern string; ``ANY_EQ`` converts to the array's
    element type; ``IS_NULL``/``IS_NOT_NULL`` give ``None``. Raises :class:`ValidationError`
    naming ``path`` (default: the attribute's field name) and ``owner`` (default: the type that
    declares the attribute).
    """
    label = path or graphql_field_name(type_attribute.name)
    where = owner or type_attribute.declared_on
    try:
        return _coerce(model, type_attribute, raw, operator)
    except _Invalid as exc:
        message = f"attribute '{label}' of {where} {exc.reason}"
        raise ValidationError(
            f"invalid filter value for '{label}'", [ErrorDetail(message, None, label)]
        ) from None


def _coerce(model: CkModel, attribute: TypeAttribute, raw: Any, operator: Operator) -> Any:
    value_type = attribute.value_type
    if operator not in _OPERATORS[value_type]:
        fitting = ", ".join(applicable_operators(value_type))
        raise _Invalid(
            f"is a {value_type} and cannot be filtered with {operator}; operators that fit: "
            f"{fitting}"
        )
    if operator in _NULL_OPS:
        return None
    if operator in _LIST_OPS:
        try:
            items = split_list_value(raw)
        except ValueError as exc:
            raise _Invalid(f"expects a list of values for {operator}: {exc}") from None
        if operator is Operator.BETWEEN and len(items) != 2:
            raise _Invalid(
                f"expects two values for BETWEEN (low and high, e.g. '10,20'), got {_show(raw)}"
            )
        if not items:
            raise _Invalid(f"expects at least one value for {operator}, got {_show(raw)}")
        return [_to_scalar(model, attribute, item, lenient=True) for item in items]
    if operator in _PATTERN_OPS or operator is Operator.ANY_LIKE:
        if not isinstance(raw, str):
            raise _Invalid(f"expects a text pattern for {operator}, got {_show(raw)}")
        if operator is Operator.MATCH_REG_EX:
            try:
                re.compile(raw)
            except re.error as exc:
                raise _Invalid(f"expects a valid regular expression, got {raw!r} ({exc})") from None
        return raw
    if operator is Operator.ANY_EQ:
        if value_type is ValueType.INT_ARRAY:
            return _to_int(raw, ValueType.INT, lenient=True)
        return _to_string(raw, lenient=True)
    if raw is None:
        raise _Invalid(f"needs a comparison value for {operator} (use IS_NULL to test for null)")
    return _to_scalar(model, attribute, raw, lenient=True)
