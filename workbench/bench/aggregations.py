"""``entities-aggregate`` (issue 12): group sensors by an enum and by their parent's name.

The data: sensors (1,000,000; 20,000 with ``--quick``) of the ``entities`` benchmarks' model,
each linked to one of 1,000 lines. Two aggregations, each summing and averaging two numeric
attributes (``batch``, ``level``): by ``kind`` (an enum), and by ``kind`` and ``parent->name``.
They run through the public API (``EntityService.aggregate``: path checks, the store's
``GROUP BY``, the DataFrame), first on the plain JSON layout, then again after
``create_index=True`` made the store's aggregate indexes (expressions of the entity's attributes
in a partial index, which SQLite answers from). The baseline is hand-written SQL doing the same
``GROUP BY`` on the same SQLite file in the same run (with the same indexes in place), its calls
interleaved with the service's; the ratio is service time / raw time (target <= 1.2), and
p95 < 1 s is the target of the indexed layout. The parent's id is on the entity row
(``entities.parent_rt_id``, workbench/storage/parents.py), so the raw statement joins the parent
by it; the store groups by the entity's keys and that id first (from the aggregate index, in
index order) and joins each parent once per group, so its time may be well below the raw join.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from workbench.bench.common import (
    BenchReport,
    bench_tenant,
    percentiles,
    progress,
    time_calls,
    timer,
)
from workbench.bench.entities import BENCH_LIBRARY
from workbench.runtime.ids import new_rt_id
from workbench.storage.base import StoredAssociation, StoredEntity, WriteBatch

__all__ = ["entities_aggregate"]

_SENSOR = "Bench.Plant/Sensor"
_LINE = "Bench.Plant/Line"
_ROLE = "System/ParentChild"
_LINES = 1_000

_RAW_BY_KIND = """
SELECT json_extract(e.attributes, '$."Kind"') AS k, count(*),
       sum(json_extract(e.attributes, '$."Batch"')), avg(json_extract(e.attributes, '$."Batch"')),
       sum(json_extract(e.attributes, '$."Level"')), avg(json_extract(e.attributes, '$."Level"'))
FROM entities AS e WHERE e.archived = 0 AND e.ck_type_id IN ('Bench.Plant/Sensor')
GROUP BY k ORDER BY k
"""
_RAW_BY_KIND_AND_PARENT = """
SELECT json_extract(e.attributes, '$."Kind"') AS k, json_extract(p.attributes, '$."Name"') AS n,
       count(*),
       sum(json_extract(e.attributes, '$."Batch"')), avg(json_extract(e.attributes, '$."Batch"')),
       sum(json_extract(e.attributes, '$."Level"')), avg(json_extract(e.attributes, '$."Level"'))
FROM entities AS e
LEFT JOIN entities AS p ON p.rt_id = e.parent_rt_id AND p.archived = 0
WHERE e.archived = 0 AND e.ck_type_id IN ('Bench.Plant/Sensor')
GROUP BY k, n ORDER BY k, n
"""


def _load(store: Any, total: int) -> None:
    now = datetime.now(UTC)
    lines = [
        StoredEntity(new_rt_id(), _LINE, {"Name": f"line {i:04d}", "Code": f"L-{i}"}, 1, now, now)
        for i in range(_LINES)
    ]
    store.apply(WriteBatch(inserts=lines))
    chunk = 20_000
    with progress("loading sensors", total) as advance:
        for start in range(0, total, chunk):
            batch = WriteBatch()
            for n in range(start, min(total, start + chunk)):
                rt_id = new_rt_id()
                attributes = {
                    "Name": f"sensor {n}",
                    "Code": f"C-{n:08d}",
                    "Batch": n % 1000,
                    "Level": (n * 7919 % 10000) / 10.0,
                    "Active": n % 3 != 0,
                    "Kind": n % 3,
                }
                batch.inserts.append(StoredEntity(rt_id, _SENSOR, attributes, 1, now, now))
                line = lines[n % _LINES]
                batch.add_associations.append(
                    StoredAssociation(_ROLE, rt_id, _SENSOR, line.rt_id, _LINE)
                )
            store.apply(batch)
            advance(len(batch.inserts))


def _measure(report: BenchReport, cases: list[Any], raw: Any, runs: int, suffix: str) -> None:
    """Time each case through the service and, interleaved call by call, as raw SQL: on a
    machine whose load changes from second to second both then see the same load."""
    for label, call, sql in cases:
        statement: str = sql

        def run_raw(s: str = statement) -> Any:
            return raw.execute(s).fetchall()

        service_samples: list[float] = []
        raw_samples: list[float] = []
        for _ in range(runs):
            service_samples += time_calls(call, 1)
            if raw is not None:
                raw_samples += time_calls(run_raw, 1)
        service = percentiles(service_samples)
        p95 = service["p95_ms"]
        name = f"group by {label}{suffix}"
        report.add(f"{name}: p50", service["p50_ms"], "ms")
        report.add(f"{name}: p95", p95, "ms", "< 1000", p95 < 1000)
        if raw is not None:
            baseline = percentiles(raw_samples)
            ratio = service["p50_ms"] / baseline["p50_ms"]
            report.add(f"{name}: raw SQL p50", baseline["p50_ms"], "ms")
            report.add(f"{name}: service / raw", ratio, "x", "<= 1.2", ratio <= 1.2)
            report.baseline[name] = baseline


def entities_aggregate(quick: bool = False, backend: str | None = None) -> BenchReport:
    total = 20_000 if quick else 1_000_000
    runs = 5 if quick else 3
    report = BenchReport(
        "entities-aggregate",
        quick,
        backend or "sqlite (embedded)",
        {"sensors": total, "lines": _LINES, "runs": runs, "measures": "sum+avg of 2 attributes"},
    )
    with bench_tenant(BENCH_LIBRARY, backend, "bench-aggregate") as tenant:
        store = tenant.entity_store
        _load(store, total)
        measures = {"sum": ["batch", "level"], "avg": ["batch", "level"]}

        def by_kind() -> Any:
            return tenant.entities.aggregate(_SENSOR, group_by=["kind"], **measures)

        def by_kind_and_parent() -> Any:
            return tenant.entities.aggregate(_SENSOR, group_by=["kind", "parent->name"], **measures)

        if len(by_kind()) != 3 or len(by_kind_and_parent()) != 3 * _LINES:
            raise AssertionError("the aggregations returned the wrong number of groups")
        raw = sqlite3.connect(store.path) if hasattr(store, "path") else None
        cases = [
            ("kind", by_kind, _RAW_BY_KIND),
            ("kind+parent", by_kind_and_parent, _RAW_BY_KIND_AND_PARENT),
        ]
        _measure(report, cases, raw, runs, "")
        # then the layout for aggregations that run often: an index on their expressions
        with timer() as elapsed:
            tenant.entities.aggregate(_SENSOR, group_by=["kind"], create_index=True, **measures)
            tenant.entities.aggregate(
                _SENSOR, group_by=["kind", "parent->name"], create_index=True, **measures
            )
        report.add("aggregate indexes: build", elapsed() * 1000, "ms")
        _measure(report, cases, raw, runs, " (indexed)")
        if raw is not None:
            raw.close()
    return report
