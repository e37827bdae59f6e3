"""Opaque keyset cursors: the sort-key values of the last row seen plus its ``rtId``."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from workbench.errors import ValidationError

__all__ = ["decode_cursor", "encode_cursor"]

_DT = "$dt"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_DT}:
        return datetime.fromisoformat(value[_DT])
    return value


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort-key values (tie-breaker last) of a row as an opaque URL-safe string."""
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected_length: int) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor` for a sort of ``expected_length`` keys."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise ValidationError(
            f"cursor {cursor!r} is not a cursor this service issued; "
            "pass the endCursor of a previous page unchanged"
        ) from None
    if not isinstance(values, list) or len(values) != expected_length:
        raise ValidationError(
            f"cursor {cursor!r} was issued for a different sort order; "
            "restart paging without 'after' when you change the sort"
        )
    return [_decode_value(v) for v in values]
