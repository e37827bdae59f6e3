"""Stream points in, checked: list of dicts, pandas (long or wide form) or Arrow → one Arrow table.

The result has ``rtId``, ``timestamp`` (UTC, microseconds; ``timeStamp`` in the API, see
:func:`output_name`) and one column per attribute given,
named as on the CK type and typed as its stream column (:func:`stream_column_type`). Everything
is validated before anything is written: every problem found is collected and raised as one
:class:`~workbench.errors.ValidationError` whose details name the row (0-based position in the
input), the column and the reason. Large inputs stay vectorised; only a column that fails its
vectorised conversion is walked value by value, to name the rows at fault.

Rules: attribute names as on the type, GraphQL-style lower-first names and any other casing are
accepted; only scalar attributes (:data:`~workbench.ck.model.SCALAR_VALUE_TYPES`) carry stream
values. Timestamps with a zone or offset are converted to UTC; naive ones are rejected unless the
caller names the zone they are in (``timezone="Europe/Vienna"``). Enum values are given by name
(any case) or key and stored as the value's *name*: readable in SQL and files, cheap thanks to
dictionary compression. A null (or NaN) value means "not given" (see the upsert rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.ck.model import SCALAR_VALUE_TYPES, CkModel, CkType, TypeAttribute, ValueType
from workbench.errors import ErrorCollector, ValidationError, shown
from workbench.storage.base import STREAM_ARROW_TYPES, StreamColumn, StreamColumnType

__all__ = [
    "Points",
    "normalize_points",
    "output_name",
    "stream_attributes",
    "stream_column_type",
]

#: accepted spellings of the key columns (lower-cased) → internal name; the API says timeStamp
_KEY_ALIASES = {"rtid": "rtId", "timestamp": "timestamp", "time_stamp": "timestamp"}
_API_KEYS = {"rtId": "rtId", "timestamp": "timeStamp"}
_LONG = {"attribute", "value"}
#: the column pandas writes an unnamed index to (``df.to_parquet()`` with a non-range index)
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_MAX_DETAILS = 20
_TIMESTAMP = STREAM_ARROW_TYPES["timestamp"]
_INT32 = (-(2**31), 2**31 - 1)


def stream_column_type(value_type: ValueType) -> StreamColumnType:
    """The stream column type storing values of ``value_type`` (a scalar value type)."""
    if value_type in (ValueType.INT, ValueType.INT64):
        return "bigint"
    if value_type == ValueType.DOUBLE:
        return "double"
    if value_type == ValueType.BOOLEAN:
        return "boolean"
    if value_type in (ValueType.DATETIME, ValueType.DATETIME_OFFSET):
        return "timestamp"
    return "varchar"  # String, and Enum stored by name


def stream_attributes(ck_type: CkType) -> dict[str, TypeAttribute]:
    """The attributes of ``ck_type`` that carry stream values, by name on the type."""
    return {name: a for name, a in ck_type.attributes.items() if a.value_type in SCALAR_VALUE_TYPES}


@dataclass
class Points:
    """Validated points: the Arrow table to append and the stream columns it uses."""

    table: pa.Table
    columns: list[StreamColumn]

    @property
    def rt_ids(self) -> list[str]:
        return [str(v) for v in pc.unique(self.table.column("rtId")).to_pylist()]


def normalize_points(
    model: CkModel,
    ck_type: CkType,
    data: Any,
    *,
    timezone: str | None = None,
) -> Points:
    """Check and convert ``data`` (module docstring); a ValidationError lists every problem."""
    zone = _zone(timezone)
    errors = ErrorCollector()
    # NaN is pandas' marker of a missing value; anywhere else it is a value no store keeps
    nan_missing = isinstance(data, pd.DataFrame)
    if isinstance(data, pd.DataFrame):
        columns, n = _from_pandas(data, errors)
    elif isinstance(data, pa.Table | pa.RecordBatch):
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        columns = {
            name: table.column(name)
            for name in table.column_names
            if not _PANDAS_INDEX.fullmatch(name)  # an unnamed pandas index written along
        }
        n = table.num_rows
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes | Mapping):
        columns, n = _from_dicts(list(data), errors)
    else:
        raise ValidationError(
            f"stream points must be a list of dicts, a pandas DataFrame or a pyarrow Table; "
            f"got {type(data).__name__}"
        )
    _raise(errors, ck_type)
    keys: dict[str, Any] = {}
    values: dict[str, tuple[TypeAttribute, Any]] = {}
    lowered = {name.lower(): name for name in stream_attributes(ck_type)}
    for name, column in columns.items():
        key = _KEY_ALIASES.get(name.lower())
        if key is not None:
            if key in keys:
                errors.add(f"column {name!r} repeats the {_API_KEYS[key]} column", "columns", name)
            keys[key] = column
            continue
        attribute = ck_type.attributes.get(name) or ck_type.attributes.get(
            lowered.get(name.lower(), "")
        )
        if attribute is None:
            attribute = next(
                (a for k, a in ck_type.attributes.items() if k.lower() == name.lower()), None
            )
        if attribute is None:
            known = ", ".join(sorted(map(output_name, stream_attributes(ck_type)))) or "none"
            errors.add(
                f"{ck_type.id} has no attribute {name!r}; its stream attributes are: {known}",
                "columns",
                name,
            )
        elif attribute.value_type not in SCALAR_VALUE_TYPES:
            errors.add(
                f"attribute {output_name(attribute.name)!r} is a {attribute.value_type}; only "
                "scalar attributes "
                "(String, Boolean, Int, Int64, Double, DateTime, Enum) carry stream values",
                "columns",
                name,
            )
        elif attribute.name in values:
            errors.add(f"attribute {output_name(attribute.name)!r} is given twice", "columns", name)
        else:
            values[attribute.name] = (attribute, column)
    for key in ("rtId", "timestamp"):
        if key not in keys:
            errors.add(f"stream points need a {_API_KEYS[key]!r} column", "columns", _API_KEYS[key])
    _raise(errors, ck_type)

    rt_ids = _convert_rt_ids(keys["rtId"], n, errors)
    timestamps = _convert_timestamps(keys["timestamp"], n, zone, errors, "timeStamp", key=True)
    arrays: list[pa.Array] = [rt_ids, timestamps]
    fields = [pa.field("rtId", pa.string()), pa.field("timestamp", _TIMESTAMP)]
    stream_columns = []
    for name, (attribute, column) in values.items():
        kind = stream_column_type(attribute.value_type)
        arrays.append(
            _convert_values(
                model, attribute, column, n, zone=zone, errors=errors, nan_missing=nan_missing
            )
        )
        fields.append(pa.field(name, STREAM_ARROW_TYPES[kind]))
        stream_columns.append(StreamColumn(name, kind))
    _raise(errors, ck_type)
    return Points(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), stream_columns)


def _raise(errors: ErrorCollector, ck_type: CkType) -> None:
    if errors.details:
        count = len(errors.details)
        del errors.details[_MAX_DETAILS:]
        more = f" (first {_MAX_DETAILS} shown)" if count > _MAX_DETAILS else ""
        errors.raise_if_any(
            ValidationError,
            f"{count} problem(s) in the stream points for {ck_type.id}{more}; nothing was written",
        )


def _zone(timezone: str | None) -> ZoneInfo | None:
    if timezone is None:
        return None
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"time zone {timezone!r} is unknown; use an IANA name such as 'Europe/Vienna' or 'UTC'"
        ) from None


# -- input shapes ---------------------------------------------------------------------------------


def _from_pandas(frame: pd.DataFrame, errors: ErrorCollector) -> tuple[dict[str, Any], int]:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        errors.add("the DataFrame has duplicate column names", "columns")
    lowered = {n.lower() for n in names}
    if lowered >= _LONG and len(lowered - _LONG - set(_KEY_ALIASES)) == 0:
        return _from_long(frame, names, errors)
    columns: dict[str, Any] = {}
    for name in names:
        series = frame[name]
        try:
            columns[name] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            columns[name] = list(series.astype(object))  # mixed values: checked one by one
    return columns, len(frame)


def _from_long(
    frame: pd.DataFrame, names: list[str], errors: ErrorCollector
) -> tuple[dict[str, Any], int]:
    """Long form ``rtId, timestamp, attribute, value``: one sparse wide row per long row (rows
    with the same key then merge by the upsert rule)."""
    by_lower = {n.lower(): n for n in names}
    attribute_col = frame[by_lower["attribute"]]
    value_col = frame[by_lower["value"]]
    columns: dict[str, Any] = {
        n: pa.array(frame[n], from_pandas=True) if n.lower() == "timestamp" else list(frame[n])
        for n in names
        if n.lower() in _KEY_ALIASES
    }
    if attribute_col.isna().any():
        row = int(attribute_col.isna().to_numpy().argmax())
        errors.add("no attribute name", f"row {row}", "attribute")
    n = len(frame)
    for attribute in pd.unique(attribute_col.dropna()):
        mask = (attribute_col == attribute).to_numpy()
        column: list[Any] = [None] * n
        for position, value in zip(mask.nonzero()[0], value_col[mask], strict=True):
            column[int(position)] = value
        columns[str(attribute)] = column
    return columns, n


def _from_dicts(rows: list[Any], errors: ErrorCollector) -> tuple[dict[str, Any], int]:
    """Columns of a list of dicts; keys match case-insensitively across rows (``Voltage`` in one
    row and ``voltage`` in the next are the same column)."""
    spelling: dict[str, str] = {}
    columns: dict[str, list[Any]] = {}
    n = len(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.add(f"expected a dict, got {type(row).__name__}", f"row {index}")
            continue
        seen: set[str] = set()
        for key, value in row.items():
            lowered = str(key).lower()
            lowered = "timestamp" if _KEY_ALIASES.get(lowered) == "timestamp" else lowered
            if lowered in seen:
                errors.add(f"key {key!r} is given twice (in another spelling)", f"row {index}")
                continue
            seen.add(lowered)
            name = spelling.get(lowered)
            if name is None:  # a new column (the list is made once, not once per value)
                name = spelling[lowered] = str(key)
                columns[name] = [None] * n
            columns[name][index] = value
    return columns, n


# -- conversions ----------------------------------------------------------------------------------


def _convert_rt_ids(column: Any, n: int, errors: ErrorCollector) -> pa.Array:
    if not isinstance(column, list):
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)) and (
            array.null_count == 0 and not pc.any(pc.equal(array, "")).as_py()
        ):
            return array.cast(pa.string())
    values = column if isinstance(column, list) else _pylist(column)
    out: list[str | None] = []
    for index, value in enumerate(values):
        if isinstance(value, str) and value:
            out.append(value)
        else:
            out.append(None)
            if len(errors.details) < _MAX_DETAILS * 2:
                errors.add(
                    f"rtId must be a non-empty string, got {shown(value)}", f"row {index}", "rtId"
                )
    return pa.array(out, pa.string()) if n else pa.array([], pa.string())


def _pylist(column: Any) -> list[Any]:
    if isinstance(column, pa.ChunkedArray | pa.Array):
        return list(column.to_pylist())
    return list(column)


def _convert_timestamps(
    column: Any,
    n: int,
    zone: ZoneInfo | None,
    errors: ErrorCollector,
    name: str,
    *,
    key: bool = False,
) -> pa.Array:
    """A timestamp column as ``timestamp[us, UTC]`` (vectorised where the input allows)."""
    if not isinstance(column, list):
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if key and array.null_count:
            first = int(pc.index(pc.is_null(array), True).as_py())
            errors.add("no timestamp", f"row {first}", name)
            return pa.nulls(n, _TIMESTAMP)
        try:
            if pa.types.is_timestamp(array.type):
                if array.type.tz is None:
                    if zone is None:
                        errors.add(
                            "timestamp has no time zone (naive); give UTC offsets or pass "
                            "timezone='Europe/Vienna' (the zone the times are in)",
                            f"row {_first_valid(array)}",
                            name,
                        )
                        return pa.nulls(n, _TIMESTAMP)
                    array = pc.assume_timezone(array, zone.key)
                converted = array.cast(_TIMESTAMP, safe=False)
                if not _in_range(converted):
                    _out_of_range(converted, errors, name)
                return converted
            elif pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                converted = array.cast(_TIMESTAMP)
                if _in_range(converted):
                    return converted
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # fall through: find the rows at fault
        if not (
            pa.types.is_timestamp(array.type)
            or pa.types.is_string(array.type)
            or pa.types.is_large_string(array.type)
            or pa.types.is_null(array.type)
        ):
            errors.add(
                f"expects timestamps, got a column of {array.type}",
                f"row {_first_valid(array)}",
                name,
            )
            return pa.nulls(n, _TIMESTAMP)
        column = array.to_pylist()
    out: list[int | None] = []
    for index, value in enumerate(column):
        if _missing(value):
            if key:
                errors.add("no timestamp", f"row {index}", name)
            out.append(None)
            continue
        try:
            out.append(_micros(_to_datetime(value, zone)))
        except ValueError as exc:
            out.append(None)
            if len(errors.details) < _MAX_DETAILS * 2:
                errors.add(str(exc), f"row {index}", name)
    return pa.array(out, pa.int64()).cast(_TIMESTAMP)


#: the instants a timestamp may take (years 1 to 9999, as in ISO 8601 and Python)
_RANGE_US = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def _in_range(array: pa.Array) -> bool:
    """True when every timestamp of ``array`` lies in years 1..9999 (else: walk the values)."""
    if len(array) == array.null_count:
        return True
    bounds = pc.min_max(array.cast(pa.int64()))
    return bool(_RANGE_US[0] <= bounds["min"].as_py() and bounds["max"].as_py() <= _RANGE_US[1])


def _out_of_range(array: pa.Array, errors: ErrorCollector, name: str) -> None:
    micros = array.cast(pa.int64())
    bad = pc.or_(pc.less(micros, _RANGE_US[0]), pc.greater(micros, _RANGE_US[1]))
    for index in pc.indices_nonzero(pc.fill_null(bad, False)).to_pylist()[:_MAX_DETAILS]:
        errors.add("the timestamp's year is out of range (1 to 9999)", f"row {index}", name)


def _first_valid(array: pa.Array) -> int:
    if array.null_count == 0 or len(array) == 0:
        return 0
    return int(pc.index(pc.is_valid(array), True).as_py())


def _to_datetime(value: Any, zone: ZoneInfo | None) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            reason = "its year is out of range (1 to 9999)" if "year" in str(exc) else None
            raise ValueError(
                f"{shown(value)} is not a usable ISO 8601 timestamp"
                + (f": {reason}" if reason else " (e.g. 2026-01-01T12:00:00Z)")
            ) from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise ValueError(f"expects a timestamp, got {shown(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        if zone is None:
            raise ValueError(
                f"timestamp {value.isoformat()} has no time zone (naive); give a UTC offset or "
                "pass timezone='Europe/Vienna' (the zone the times are in)"
            )
        value = value.replace(tzinfo=zone)
    converted: datetime = value.astimezone(UTC)
    return converted


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _convert_values(
    model: CkModel,
    attribute: TypeAttribute,
    column: Any,
    n: int,
    *,
    zone: ZoneInfo | None,
    errors: ErrorCollector,
    nan_missing: bool = True,
) -> pa.Array:
    value_type = attribute.value_type
    name = output_name(attribute.name)
    if value_type in (ValueType.DATETIME, ValueType.DATETIME_OFFSET):
        return _convert_timestamps(column, n, zone, errors, name)
    kind = stream_column_type(value_type)
    target = STREAM_ARROW_TYPES[kind]
    if value_type == ValueType.ENUM:
        return _convert_enum(model, attribute, column, errors)
    if not isinstance(column, list):
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        fast = _fast_cast(array, value_type, target, nan_missing)
        if fast is not None:
            return fast
        column = array.to_pylist()
    out: list[Any] = []
    for index, value in enumerate(column):
        try:
            missing = value is None or value is pd.NaT or (nan_missing and _missing(value))
            out.append(None if missing else _convert_scalar(value, value_type))
        except ValueError as exc:
            out.append(None)
            if len(errors.details) < _MAX_DETAILS * 2:
                errors.add(f"attribute {name!r} {exc}", f"row {index}", name)
    return pa.array(out, target)


def _fast_cast(
    array: pa.Array, value_type: ValueType, target: pa.DataType, nan_missing: bool = True
) -> pa.Array | None:
    """The vectorised conversion, or None when some value needs a closer look (an infinite
    value, or a NaN that does not mean "missing")."""
    kind = array.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    try:
        if pa.types.is_floating(kind) and len(array):
            nan = pc.is_nan(array)
            if pc.any(pc.is_inf(array)).as_py() or (not nan_missing and pc.any(nan).as_py()):
                return None
            array = pc.if_else(nan, pa.scalar(None, kind), array)
        if value_type == ValueType.DOUBLE and (numeric or pa.types.is_null(kind)):
            return array.cast(target)
        if value_type in (ValueType.INT, ValueType.INT64) and (numeric or pa.types.is_null(kind)):
            out = array.cast(target)
            if value_type == ValueType.INT and len(out) and out.null_count < len(out):
                bounds = pc.min_max(out)
                if bounds["min"].as_py() < _INT32[0] or bounds["max"].as_py() > _INT32[1]:
                    return None
            return out
        if value_type == ValueType.BOOLEAN and (
            pa.types.is_boolean(kind) or pa.types.is_null(kind)
        ):
            return array.cast(target)
        if value_type == ValueType.STRING and (
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
        ):
            return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None


def _convert_scalar(value: Any, value_type: ValueType) -> Any:
    if value_type == ValueType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value)
        raise ValueError(f"expects a string, got {shown(value)}")
    if value_type == ValueType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
            return value.strip().lower() in {"true", "1"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"expects true or false, got {shown(value)}")
    if isinstance(value, bool):
        raise ValueError(f"expects a number, got {shown(value)}")
    if value_type == ValueType.DOUBLE:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expects a number, got {shown(value)}") from None
        if not math.isfinite(number):
            raise ValueError(
                f"is {shown(value)}, which a stream cannot store: values must be finite "
                "numbers (no NaN, no Infinity, nothing beyond ±1.8e308); leave a missing "
                "value out or send null"
            )
        return number
    # Int / Int64
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError
            number = int(number)
        integer = int(number)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expects an integer, got {shown(value)}") from None
    low, high = _INT32 if value_type == ValueType.INT else (-(2**63), 2**63 - 1)
    if not low <= integer <= high:
        raise ValueError(f"value {integer} is out of range for {value_type} ({low}..{high})")
    return integer


def _convert_enum(
    model: CkModel, attribute: TypeAttribute, column: Any, errors: ErrorCollector
) -> pa.Array:
    enum = model.enum(attribute.attribute.enum_id or "")
    values = column if isinstance(column, list) else _pylist(column)
    cache: dict[Any, str | None] = {}
    out: list[str | None] = []
    names = ", ".join(f"{v.name} ({v.key})" for v in enum.values)
    for index, value in enumerate(values):
        if _missing(value):
            out.append(None)
            continue
        marker = (type(value).__name__, value)
        if marker not in cache:
            found = None
            if isinstance(value, str):
                found = enum.by_name(value.strip())
                if found is None and value.strip().lstrip("-").isdigit():
                    found = enum.by_key(int(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                found = enum.by_key(value)
            cache[marker] = found.name if found else None
        name = cache[marker]
        if name is None and len(errors.details) < _MAX_DETAILS * 2:
            errors.add(
                f"attribute {output_name(attribute.name)!r} expects a value of enum {enum.id} "
                f"({names}), "
                f"got {shown(value)}",
                f"row {index}",
                output_name(attribute.name),
            )
        out.append(name)
    return pa.array(out, pa.string())


def output_name(column: str) -> str:
    """The name a stream column has in results (GraphQL style: first letter lower-cased; the
    key column ``timestamp`` of the stores is ``timeStamp``, as everywhere in the API)."""
    if column == "timestamp":
        return "timeStamp"
    return column[:1].lower() + column[1:]
