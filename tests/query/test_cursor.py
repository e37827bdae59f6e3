"""Keyset cursors: what a page hands out reads back to the same sort values."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.query.cursor import decode_cursor, encode_cursor, sort_fingerprint
from workbench.query.model import SortKey

SORT = [SortKey(("attributes", "Voltage")), SortKey(("rtId",))]


@pytest.mark.parametrize(
    "value",
    [
        230.5,
        -(2**63),
        2**64 + 1,  # beyond what orjson writes: json.dumps does
        "zählerstand €",
        datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        None,
        True,
    ],
)
def test_cursor_round_trip(value: Any) -> None:
    cursor = encode_cursor([value, "rt-1"], sort=SORT)
    assert not set(cursor) & set("=+/")  # URL-safe, unpadded
    assert decode_cursor(cursor, 2, sort=SORT) == [value, "rt-1"]


def test_non_finite_sort_values_keep_their_value() -> None:
    [nan, inf] = decode_cursor(encode_cursor([math.nan, math.inf]), 2)
    assert math.isnan(nan)
    assert inf == math.inf


def test_cursors_issued_before_the_orjson_encoder_still_read() -> None:
    payload = {"s": sort_fingerprint(SORT), "v": ["zählerstand", "rt-9"]}
    old = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    assert decode_cursor(old.decode().rstrip("="), 2, sort=SORT) == ["zählerstand", "rt-9"]


def test_a_cursor_of_another_sort_is_rejected() -> None:
    cursor = encode_cursor([1.0, "rt-1"], sort=SORT)
    with pytest.raises(ValidationError, match="different sort order"):
        decode_cursor(cursor, 2, sort=[SortKey(("attributes", "Current")), SortKey(("rtId",))])
