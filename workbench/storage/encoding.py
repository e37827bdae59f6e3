"""The datetime text the document stores (SQLite, MongoDB) keep inside JSON-like values.

A timezone-aware datetime is stored as :data:`DATETIME_MARKER` followed by fixed-width UTC text
(``"$dt:2026-01-02T03:04:05.123456Z"``), so stored datetimes sort and compare chronologically as
plain strings. A string value that itself starts with ``$dt:`` or ``$$`` is stored with one more
leading ``$`` (see :func:`escape_string`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

__all__ = ["DATETIME_MARKER", "ESCAPED_PREFIXES", "escape_string", "utc_text"]

DATETIME_MARKER = "$dt:"
#: the prefixes of a stored string that get one more leading ``$``
ESCAPED_PREFIXES = ("$$", DATETIME_MARKER)


@lru_cache(maxsize=4096)  # imports repeat the same few timestamps across many entities
def utc_text(value: datetime) -> str:
    """An aware ``value`` in UTC as fixed-width ISO text (``2026-01-02T03:04:05.123456Z``)."""
    # isoformat pads the year to four digits: always 32 characters ending in +00:00
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def escape_string(value: str) -> str:
    """``value`` as stored: one more leading ``$`` when it starts with ``$dt:`` or ``$$``."""
    return "$" + value if value.startswith(ESCAPED_PREFIXES) else value
