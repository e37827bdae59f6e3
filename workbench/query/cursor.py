"""Opaque keyset cursors: the sort-key values of the last row seen plus its ``rtId``."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from workbench.errors import ValidationError
from workbench.query.model import SortKey

__all__ = ["decode_cursor", "encode_cursor", "sort_fingerprint"]

_DT = "$dt"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_DT}:
        return datetime.fromisoformat(value[_DT])
    return value


def sort_fingerprint(sort: Sequence[SortKey]) -> str:
    """A short digest of a sort order, stored in cursors so one issued for another sort is
    rejected even when that sort has as many keys."""
    return _fingerprint(tuple(sort))


@lru_cache(maxsize=256)
def _fingerprint(sort: tuple[SortKey, ...]) -> str:
    spec = "|".join(".".join(key.path) + (":d" if key.descending else ":a") for key in sort)
    return hashlib.sha256(spec.encode()).hexdigest()[:10]


def encode_cursor(values: list[Any], sort: Sequence[SortKey] | None = None) -> str:
    """Encode the sort-key values (tie-breaker last) of a row as an opaque URL-safe string.

    With ``sort`` (the effective sort, tie-breaker included) the cursor also carries
    :func:`sort_fingerprint`, and :func:`decode_cursor` given the same ``sort`` checks it.
    """
    encoded = [_encode_value(v) for v in values]
    payload: Any = encoded if sort is None else {"s": sort_fingerprint(sort), "v": encoded}
    # orjson: a page encodes one cursor per row; what it writes differently from json.dumps
    # (NaN/infinity as null, integers beyond 64 bits) goes through json.dumps
    raw: bytes | None = None
    if not any(type(v) is float and not math.isfinite(v) for v in encoded):
        try:
            raw = orjson.dumps(payload, default=str)
        except TypeError:
            raw = None
    if raw is None:
        raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str, expected_length: int, sort: Sequence[SortKey] | None = None
) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor` for a sort of ``expected_length`` keys
    (and, when ``sort`` is given, made for that very sort)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise ValidationError(
            f"cursor {cursor!r} is not a cursor this service issued; "
            "pass the endCursor of a previous page unchanged"
        ) from None
    if sort is not None:
        if not isinstance(values, dict) or values.get("s") != sort_fingerprint(sort):
            values = None
        else:
            values = values.get("v")
    if not isinstance(values, list) or len(values) != expected_length:
        raise ValidationError(
            f"cursor {cursor!r} was issued for a different sort order; "
            "restart paging without 'after' when you change the sort"
        )
    return [_decode_value(v) for v in values]
