"""TimeSpan values: ISO 8601 durations and .NET TimeSpans to and from float seconds."""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["format_timespan", "parse_timespan"]


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
