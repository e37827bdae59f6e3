"""Stream rollups and retention for one CK type.

Points older than ``rollup_after`` are replaced by one point per rtId and ``interval`` bucket
(the bucket's ``function`` of each attribute, at the bucket's start), so old data keeps its
shape at a fraction of the size; points older than ``retain`` (raw or rolled up) are deleted.
Running it again is harmless: a bucket that holds one point rolls up to itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from workbench.bots.builtin.selection import find_all
from workbench.errors import ValidationError
from workbench.streams.intervals import parse_interval

__all__ = ["RollupReport", "rollup_streams"]

_FUNCTIONS = ("avg", "min", "max", "first", "last")


@dataclass
class RollupReport:
    ck_type_id: str
    rolled_from: str | None
    rolled_to: str | None
    raw_points: int
    rollup_points: int
    expired_points: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _delta(value: str | timedelta) -> timedelta:
    return timedelta(microseconds=parse_interval(value))


def _floor(moment: datetime, interval: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // interval) * interval


def rollup_streams(
    tenant: Any,
    ck_type_id: str,
    *,
    interval: str = "1h",
    rollup_after: str | None = "7d",
    retain: str | None = None,
    function: str = "avg",
    where: Any = None,
    now: datetime | None = None,
) -> RollupReport:
    """Roll up and expire the stream data of ``ck_type_id`` (of the entities matching
    ``where``, or all; see the module doc); durations as ``30m``, ``1h``, ``7d``; ``None``
    skips that step."""
    if function not in _FUNCTIONS:
        raise ValidationError(
            f"rollup function {function!r}: use one of {', '.join(_FUNCTIONS)} (a rollup "
            "replaces points, so the result must be a value of the attribute)"
        )
    now = now or datetime.now(UTC)
    streams = tenant.streams(ck_type_id)
    step = _delta(interval)
    report = RollupReport(ck_type_id, None, None, 0, 0, 0)
    rt_ids = [e.rt_id for e in find_all(tenant, ck_type_id, where)] if where else None
    if rt_ids == []:
        return report
    if rollup_after is not None:
        end = _floor(now - _delta(rollup_after), step)
        oldest = streams.read(None, end, rt_ids=rt_ids, first=1).table
        if oldest.num_rows:
            start = _floor(oldest.column("timeStamp")[0].as_py(), step)
            raw = streams.read(start, end, rt_ids=rt_ids).table.num_rows
            # "last" too: an attribute the function does not apply to (an enum, a string)
            # keeps the bucket's last value instead of being lost with the raw points
            functions = sorted({function, "last"})
            buckets = streams.aggregate(start, end, interval, functions, rt_ids=rt_ids).table
            points = _as_points(buckets, function)
            streams.delete(start, end, rt_ids=rt_ids)
            if points.num_rows:
                streams.write(points)
            report.rolled_from, report.rolled_to = start.isoformat(), end.isoformat()
            report.raw_points, report.rollup_points = raw, points.num_rows
    if retain is not None:
        report.expired_points = streams.delete(None, now - _delta(retain), rt_ids=rt_ids)
    return report


def _as_points(buckets: pa.Table, function: str) -> pa.Table:
    """Aggregate columns (``voltageAvg``) back to attribute columns at the bucket start;
    ``<attribute>Last`` where the function gave no column for an attribute."""
    columns: dict[str, Any] = {
        "rtId": buckets.column("rtId"),
        "timeStamp": buckets.column("bucket"),
    }
    for suffix in ("Last", function.capitalize()):  # the function's columns win
        for name in buckets.column_names:
            if name.endswith(suffix) and name not in ("rtId", "bucket"):
                columns[name[: -len(suffix)]] = buckets.column(name)
    return pa.table(columns)
