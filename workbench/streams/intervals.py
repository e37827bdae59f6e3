"""Durations such as ``1s``, ``15m``, ``1h``, ``1d``, ``90d``: parsing, printing, nice steps."""

from __future__ import annotations

import re
from datetime import timedelta

from workbench.errors import ValidationError

__all__ = [
    "NICE_INTERVALS_US",
    "bucket_count",
    "format_interval",
    "nice_interval",
    "parse_interval",
]

_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*$")

_S, _M, _H, _D = 1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000

#: Bucket sizes downsampling chooses from, smallest first (each a "round" number on a chart axis).
NICE_INTERVALS_US: tuple[int, ...] = (
    *(n * 1_000 for n in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    *(n * _S for n in (1, 2, 5, 10, 15, 30)),
    *(n * _M for n in (1, 2, 5, 10, 15, 30)),
    *(n * _H for n in (1, 2, 3, 6, 12)),
    *(n * _D for n in (1, 2, 7, 14, 30, 90, 180, 365)),
)


def parse_interval(value: str | timedelta) -> int:
    """The duration ``value`` in microseconds: ``<n><unit>`` with unit ``us``, ``ms``, ``s``,
    ``m`` (minutes), ``h``, ``d`` or ``w``; or a positive :class:`~datetime.timedelta`.

    Months and years are not accepted: their length varies, so they cannot be a fixed bucket."""
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    else:
        match = _PATTERN.match(str(value))
        if match is None:
            raise ValidationError(
                f"interval {value!r} is not a duration; write a number and a unit such as "
                "'1s', '15m', '1h', '1d' or '90d' (units: us, ms, s, m, h, d, w)"
            )
        micros = int(match.group(1)) * _UNITS_US[match.group(2)]
    if micros <= 0:
        raise ValidationError(f"interval {value!r} must be longer than zero")
    return micros


def format_interval(micros: int) -> str:
    """The shortest ``<n><unit>`` spelling of ``micros`` (``900000000`` -> ``15m``)."""
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        size = _UNITS_US[unit]
        if micros % size == 0:
            return f"{micros // size}{unit}"
    raise AssertionError("unreachable: 'us' divides everything")


def bucket_count(start_us: int, end_us: int, interval_us: int) -> int:
    """How many epoch-aligned ``interval_us`` buckets ``[start_us, end_us)`` touches."""
    if end_us <= start_us:
        return 0
    return (end_us - 1) // interval_us - start_us // interval_us + 1


def nice_interval(start_us: int, end_us: int, limit: int) -> int:
    """The smallest nice bucket size (:data:`NICE_INTERVALS_US`, then multiples of a year) for
    which ``[start_us, end_us)`` touches at most ``limit`` epoch-aligned buckets."""
    if limit < 1:
        raise ValidationError(f"downsample limit must be at least 1, got {limit}")
    for interval in NICE_INTERVALS_US:
        if bucket_count(start_us, end_us, interval) <= limit:
            return interval
    interval = NICE_INTERVALS_US[-1]
    while bucket_count(start_us, end_us, interval) > limit:
        interval *= 2
    return interval
