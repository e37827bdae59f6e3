"""JSON and datetime encoding of the SQLite entity store.

Attribute JSON shape: plain JSON, except that a timezone-aware ``datetime`` is the string
``"$dt:YYYY-MM-DDTHH:MM:SS.ffffffZ"`` (UTC, fixed width, so it sorts lexically and compares with
``<``/``>``), and a string that itself begins with ``$dt:`` or ``$$`` is stored with one extra
leading ``$``. System datetime columns hold the same fixed-width text without the marker.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from workbench.errors import (
    ValidationError,
)
from workbench.storage.encoding import (
    DATETIME_MARKER,
    ESCAPED_PREFIXES,
    escape_string,
    utc_text,
)

__all__ = ["decode_json", "encode_json", "format_datetime"]


def format_datetime(value: datetime) -> str:
    """``value`` in UTC as fixed-width ISO text with microseconds (``...T08:00:00.000000Z``)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"datetime {value.isoformat()} has no timezone; pass a timezone-aware datetime "
            "(e.g. datetime.now(UTC))"
        )
    return utc_text(value)


#: the system datetime last formatted by :func:`_stamp_text` and its text, as one tuple that
#: is replaced whole (so threads never see a datetime with another's text)
_LAST_STAMP: list[tuple[object, str]] = [(object(), "")]


def _stamp_text(value: datetime) -> str:
    """:func:`format_datetime` of an entity's creation/change datetime: a batch stamps every
    entity with the same datetime object, so the last one is remembered by identity (the
    reference held here keeps the object alive, so its identity cannot be reused)."""
    last = _LAST_STAMP[0]
    if value is last[0]:
        return last[1]
    text = format_datetime(value)
    _LAST_STAMP[0] = (value, text)
    return text


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _encode_scalar(value: Any) -> Any:
    """A JSON-stored scalar as SQLite sees it through ``json_extract``."""
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return DATETIME_MARKER + format_datetime(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"the number {value!r} cannot be stored or compared; use a finite value"
        )
    if value is None or isinstance(value, int | float):
        return value
    raise ValidationError(
        f"{value!r} ({type(value).__name__}) is not a comparable scalar; "
        "use str, int, float, bool or a timezone-aware datetime"
    )


def _encode_tree(value: Any) -> Any:
    if isinstance(value, str):  # escape_string, inlined: this walks every value of a document
        return "$" + value if value.startswith(ESCAPED_PREFIXES) else value
    if isinstance(value, dict):
        return {str(key): _encode_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_tree(item) for item in value]
    if isinstance(value, datetime):
        return DATETIME_MARKER + format_datetime(value)
    return value


class _DatetimeCount(threading.local):
    """Datetimes converted by the current thread's encode_json call."""

    value = 0


_DATETIMES = _DatetimeCount()


def _json_default(value: object) -> str:
    if type(value) is datetime and value.tzinfo is UTC:  # what the entity service stores
        _DATETIMES.value += 1
        return DATETIME_MARKER + utc_text(value)
    if isinstance(value, datetime):
        _DATETIMES.value += 1
        return DATETIME_MARKER + format_datetime(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


# One C encoder built once with json.dumps' compact settings (ensure_ascii=False,
# allow_nan=False): json.dumps builds a new encoder per call, which costs more than encoding a
# small document. Without a markers dict it cannot detect cycles; a cyclic document ends in
# RecursionError, and encode_json then lets json.dumps report it.
_C_ENCODER: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def _dumps_fast(document: Any) -> str:
    if _C_ENCODER is None:  # pragma: no cover - CPython always has the C encoder
        return _DUMPS(document, default=_json_default)
    chunks = _C_ENCODER(document, 0)
    return chunks[0] if len(chunks) == 1 else "".join(chunks)


def encode_json(document: Any) -> str:
    """``document`` as the JSON text this store writes (see the module docstring)."""
    counter = _DATETIMES
    counter.value = 0
    try:
        try:
            text = _dumps_fast(document)
        except RecursionError:
            # a cycle (or absurd nesting): json.dumps names it ("Circular reference detected")
            counter.value = 0
            text = _DUMPS(document, default=_json_default)
        # Fast path: the C encoder did all the work unless a string of the caller's starts with
        # a marker ("$dt:" or "$$"), which needs escaping. Every '"$dt:' beyond the datetimes
        # we converted, or any '"$$', sends the document through the exact (slower) walk.
        if '"$' in text and (text.count('"' + DATETIME_MARKER) != counter.value or '"$$' in text):
            text = _DUMPS(_encode_tree(document))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"value cannot be stored as JSON ({exc}); use str, int, float, bool, None, lists, "
            "dicts and timezone-aware datetimes"
        ) from None
    return text


def _DUMPS(document: Any, default: Any = None) -> str:
    return json.dumps(
        document, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=default
    )


def _decode_list(items: list[Any]) -> list[Any]:
    for i, item in enumerate(items):
        if type(item) is str:
            if item[:1] == "$":
                items[i] = _decode_string(item)
        elif type(item) is list:
            _decode_list(item)
    return items


def _decode_string(value: str) -> Any:
    if value.startswith(DATETIME_MARKER):
        return _parse_datetime(value[len(DATETIME_MARKER) :])
    return value[1:] if value.startswith("$$") else value


def _decode_object(document: dict[str, Any]) -> dict[str, Any]:
    # json calls this bottom-up for every object, so nested objects are already decoded.
    for key, value in document.items():
        if type(value) is str:
            if value[:1] == "$":
                document[key] = _decode_string(value)
        elif type(value) is list:
            _decode_list(value)
    return document


#: the UTF-8 text with every ASCII digit as ``0`` and every other byte as ``x``: a run of 19
#: digits is then one fixed substring, which ``in`` finds ~5x faster than a regex search
#: ``[0-9]{19}`` (every byte of a non-ASCII character is >= 0x80, so it is never a digit)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_LONG_DIGITS = b"0" * 19


def decode_json(text: str) -> Any:
    """The inverse of :func:`encode_json`."""
    # A marker always shows up as '"$' in the text; skip the hook when there is none.
    if '"$' not in text:
        # orjson is several times faster than json.loads on an entity's attributes; it reads
        # integers beyond 64 bits as floats (so 19+ digits go to json) and rejects lone
        # surrogates and 1e400 (which json reads as it always did)
        try:
            long_digits = _LONG_DIGITS in text.encode().translate(_DIGITS_AS_ZERO)
        except UnicodeEncodeError:  # a lone surrogate: orjson refuses it, json reads it
            long_digits = True
        if not long_digits:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
        return json.loads(text)
    return json.loads(text, object_hook=_decode_object)


def _display(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith(DATETIME_MARKER):
            return _parse_datetime(value[len(DATETIME_MARKER) :]).isoformat()
        return repr(value[1:] if value.startswith("$$") else value)
    return repr(value)
