"""Stream data: time-stamped values of entities' scalar attributes, per CK type.

>>> streams = tenant.streams("Demo.Energy/EnergyMeter")           # doctest: +SKIP
>>> streams.write(df)                                              # doctest: +SKIP
>>> page = streams.read("2026-01-01T00:00Z", "2026-01-02T00:00Z", first=1000)  # doctest: +SKIP
>>> page.to_pandas(), page.end_cursor                              # doctest: +SKIP
"""

from workbench.streams.demo import demo_points
from workbench.streams.intervals import format_interval, nice_interval, parse_interval
from workbench.streams.points import normalize_points
from workbench.streams.service import StreamResult, StreamService, TypeStreams

__all__ = [
    "StreamResult",
    "StreamService",
    "TypeStreams",
    "demo_points",
    "format_interval",
    "nice_interval",
    "normalize_points",
    "parse_interval",
]
