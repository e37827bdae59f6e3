"""TimeSpan values as pipeline definitions write them (``00:00:10``, ``1.02:00:00``, ``10s``)."""

from __future__ import annotations

import re

from workbench.errors import ValidationError

__all__ = ["TIMESPAN_PATTERN", "parse_timespan"]

#: [d.]hh:mm:ss[.fraction], or a number of seconds with an optional unit
TIMESPAN_PATTERN = r"^((\d+\.)?\d{1,2}:\d{2}:\d{2}(\.\d+)?|\d+(\.\d+)?(ms|s|m|h)?)$"
_CLOCK = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_timespan(value: object) -> float:
    """Seconds of a TimeSpan string (or a number of seconds)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    clock = _CLOCK.match(text)
    if clock:
        days, hours, minutes, seconds = clock.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    unit = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$", text)
    if unit:
        return float(unit.group(1)) * _UNITS[unit.group(2) or ""]
    raise ValidationError(
        f"{value!r} is not a TimeSpan; write hh:mm:ss (00:00:10), d.hh:mm:ss or 10s"
    )
