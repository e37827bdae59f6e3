"""Durations and the downsampling interval choice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workbench.errors import ValidationError
from workbench.streams.intervals import bucket_count, format_interval, nice_interval, parse_interval

S = 1_000_000
DAY = 86_400 * S


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("1s", S),
        ("15m", 900 * S),
        ("1h", 3600 * S),
        ("1d", DAY),
        ("90d", 90 * DAY),
        ("250ms", 250_000),
        ("2w", 14 * DAY),
        (timedelta(minutes=5), 300 * S),
    ],
)
def test_parse_interval(text: str | timedelta, micros: int) -> None:
    assert parse_interval(text) == micros


@pytest.mark.parametrize("text", ["", "15", "1 month", "1y", "-1s", "0s", "abc"])
def test_bad_intervals_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValidationError, match=r"'1s'|longer than zero"):
        parse_interval(text)


def test_format_interval_round_trips() -> None:
    for text in ("1s", "15m", "1h", "1d", "90d", "250ms", "2w", "7us"):
        assert format_interval(parse_interval(text)) == text
    assert format_interval(parse_interval("24h")) == "1d"


def test_nice_interval_is_the_smallest_that_fits() -> None:
    week = 7 * DAY
    assert nice_interval(0, week, 2_000) == 10 * 60 * S  # 5m would give 2,016 buckets
    assert bucket_count(0, week, 10 * 60 * S) == 1_008
    assert nice_interval(0, 60 * S, 2_000) == 50_000  # 1,200 buckets of 50 ms
    assert nice_interval(S // 2, S // 2 + 10 * S, 10) == 2 * S  # unaligned: 11 buckets of 1 s
    huge = nice_interval(0, 100 * 365 * DAY, 10)
    assert bucket_count(0, 100 * 365 * DAY, huge) <= 10
    with pytest.raises(ValidationError):
        nice_interval(0, S, 0)
