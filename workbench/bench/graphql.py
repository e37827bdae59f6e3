"""``schema-build``, ``graphql-list`` and ``graphql-large`` (BENCHMARKS.md), in process.

The model: sites → buildings → meters (ParentChild) with six scalar attributes, an enum and a
record on each meter. The baseline is the raw entity store fetching the same page (and, for
``graphql-large``, the same parents) in the same run, so the ratio shows what the service layer and
GraphQL execution cost. Over-HTTP figures are added by the Asset Repository service.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from workbench.bench.common import (
    BenchReport,
    bench_tenant,
    percentiles,
    progress,
    time_calls,
    timer,
)
from workbench.ck.loader import load_library_from_documents
from workbench.runtime.entity import AssociationInput, EntityInput

__all__ = ["GRAPHQL_BENCH_LIBRARY", "graphql_large", "graphql_list", "schema_build"]

GRAPHQL_BENCH_LIBRARY = """
modelId: Bench.Meter-1.0.0
dependencies:
  - System-[2.0,3.0)
attributes:
  - {id: SerialNumber, valueType: String}
  - {id: Voltage, valueType: Double}
  - {id: Current, valueType: Double}
  - {id: Reading, valueType: Int}
  - {id: FloorCount, valueType: Int}
  - {id: State, valueType: Enum, valueCkEnumId: Bench.Meter/State}
  - {id: Phase, valueType: Record, valueCkRecordId: Bench.Meter/Phase}
enums:
  - enumId: State
    values: [{key: 0, name: Unknown}, {key: 1, name: Active}, {key: 2, name: Faulty}]
records:
  - recordId: Phase
    attributes:
      - {id: Bench.Meter/Voltage, name: Voltage}
      - {id: Bench.Meter/Current, name: Current}
types:
  - typeId: Site
    derivedFromCkTypeId: System/Entity
    attributes: [{id: System/Name, name: Name}]
  - typeId: Building
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Bench.Meter/FloorCount, name: FloorCount}
    associations: [{id: System/ParentChild, targetCkTypeId: Bench.Meter/Site}]
  - typeId: Meter
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Bench.Meter/SerialNumber, name: SerialNumber}
      - {id: Bench.Meter/State, name: State}
      - {id: Bench.Meter/Voltage, name: Voltage}
      - {id: Bench.Meter/Current, name: Current}
      - {id: Bench.Meter/Reading, name: Reading}
      - {id: Bench.Meter/Phase, name: PhaseL1}
    associations: [{id: System/ParentChild, targetCkTypeId: Bench.Meter/Building}]
"""

LIST_QUERY = """
query List($after: String) {
  runtime { rtBenchMeterMeter(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    items { rtId name serialNumber state voltage current }
  } }
}"""

LARGE_QUERY = """
query Large($first: Int!) {
  runtime { rtBenchMeterMeter(first: $first) {
    items {
      rtId name serialNumber state voltage current reading
      phaseL1 { voltage current }
      parent { ... on BenchMeterBuilding { name floorCount } }
    }
  } }
}"""


def _interleaved(
    first: Callable[[], Any], second: Callable[[], Any], count: int
) -> tuple[list[float], list[float]]:
    """Durations (s) of ``count`` calls of each, alternating (ABBA), so a change of machine load
    during the run weighs on both sides of a ratio alike."""
    a: list[float] = []
    b: list[float] = []
    for index in range(count):
        order = ((first, a), (second, b)) if index % 2 == 0 else ((second, b), (first, a))
        for func, samples in order:
            start = time.perf_counter()
            func()
            samples.append(time.perf_counter() - start)
    return a, b


@contextmanager
def _service_gc() -> Iterator[None]:
    """The Asset Repository's collector settings (``tune_gc``) for the timed part, undone after:
    what the service process runs with."""
    from workbench.services.asset_repository.app import tune_gc

    previous = tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)


def _tenant(backend: str | None, name: str) -> Any:
    return bench_tenant(GRAPHQL_BENCH_LIBRARY, backend, name)


def _fill(tenant: Any, meters: int, buildings: int) -> None:
    site = tenant.entities.create("Bench.Meter/Site", {"name": "Site"})
    created = tenant.entities.apply(
        creates=[
            EntityInput(
                "Bench.Meter/Building",
                {"name": f"Building {i}", "floorCount": i % 7},
                associations=[AssociationInput("System/ParentChild", site.rt_id)],
            )
            for i in range(buildings)
        ]
    )
    building_ids = [b.rt_id for b in created]
    chunk = 5_000
    with progress("creating meters", meters) as advance:
        for start in range(0, meters, chunk):
            part = [
                EntityInput(
                    "Bench.Meter/Meter",
                    {
                        "name": f"Meter {n}",
                        "serialNumber": f"SN-{n:08d}",
                        "state": ("Unknown", "Active", "Faulty")[n % 3],
                        "voltage": 220 + (n % 200) / 10,
                        "current": (n % 50) / 3,
                        "reading": n,
                        "phaseL1": {"voltage": 230.0 + n % 10, "current": 1.5},
                    },
                    associations=[
                        AssociationInput("System/ParentChild", building_ids[n % buildings])
                    ],
                )
                for n in range(start, min(start + chunk, meters))
            ]
            tenant.entities.apply(creates=part)
            advance(len(part))


def _check(result: Any) -> None:
    if result.errors:
        raise RuntimeError(f"benchmark query failed: {result.errors[0].message}")


def graphql_list(quick: bool = False, backend: str | None = None) -> BenchReport:
    """``rt<Type>(first: 100)`` with 6 fields, in process, against the raw store page."""
    from workbench.graphql import SchemaCache

    total = 1_000 if quick else 10_000
    samples = 100 if quick else 1_000
    report = BenchReport(
        "graphql-list",
        quick,
        backend or "sqlite (embedded)",
        {"entities": total, "page": 100, "fields": 6, "samples": samples},
    )
    with _tenant(backend, "bench-gql-list") as tenant:
        _fill(tenant, total, 10)
        cache = SchemaCache()
        schema = cache.get(tenant)
        context = cache.context(tenant)
        _check(schema.execute_sync(LIST_QUERY, context=context))
        query = tenant.entities.build_query("Bench.Meter/Meter", first=100)
        store = tenant.entity_store
        store.find(query)
        with _service_gc():
            gql, raw = _interleaved(
                lambda: _check(schema.execute_sync(LIST_QUERY, context=context)),
                lambda: store.find(query),
                samples,
            )
    stats, raw_stats = percentiles(gql), percentiles(raw)
    ratio = stats["p50_ms"] / raw_stats["p50_ms"]
    report.add("graphql page p50 (in process)", stats["p50_ms"], "ms")
    report.add("graphql page p95 (in process)", stats["p95_ms"], "ms")
    report.add("raw store page p50", raw_stats["p50_ms"], "ms")
    report.add("graphql / raw store (p50)", ratio, "x", "<= 2", ratio <= 2)
    report.add("graphql requests/s (in process, 1 thread)", 1000 / stats["mean_ms"], "req/s")
    report.baseline = {"raw_store_page": raw_stats}
    return report


def graphql_large(quick: bool = False, backend: str | None = None) -> BenchReport:
    """One query returning 10,000 meters with 6 scalars, a record and the parent's 2 fields."""
    from workbench.graphql import SchemaCache

    total = 1_000 if quick else 10_000
    samples = 5 if quick else 10
    report = BenchReport(
        "graphql-large",
        quick,
        backend or "sqlite (embedded)",
        {
            "entities": total,
            "scalars": 6,
            "record_fields": 2,
            "parent_fields": 2,
            "samples": samples,
        },
    )
    with _tenant(backend, "bench-gql-large") as tenant:
        _fill(tenant, total, max(1, total // 100))
        cache = SchemaCache()
        schema = cache.get(tenant)
        context = cache.context(tenant)
        variables = {"first": total}
        _check(schema.execute_sync(LARGE_QUERY, variables, context=context))
        store = tenant.entity_store
        query = tenant.entities.build_query("Bench.Meter/Meter", first=total)

        def raw() -> None:
            page = store.find(query)
            ids = [e.rt_id for e in page.items]
            links = store.associations(ids, "outbound")
            store.get_many(sorted({link.target_rt_id for link in links}))

        raw()

        def execute() -> None:
            _check(schema.execute_sync(LARGE_QUERY, variables, context=context))

        # the interpreter's default collector settings, for comparison
        default_gc = time_calls(execute, samples)
        with _service_gc():
            gql, raw_times = _interleaved(execute, raw, samples)
    stats, raw_stats = percentiles(gql), percentiles(raw_times)
    seconds = stats["p50_ms"] / 1000
    report.add("graphql server time p50 (in process)", seconds, "s", "< 0.3", seconds < 0.3)
    report.add("raw store (page + parents) p50", raw_stats["p50_ms"] / 1000, "s")
    report.add("graphql / raw store (p50)", stats["p50_ms"] / raw_stats["p50_ms"], "x")
    report.add(
        "graphql server time p50, default GC settings",
        percentiles(default_gc)["p50_ms"] / 1000,
        "s",
    )
    report.baseline = {"raw_store": raw_stats, "graphql_default_gc": percentiles(default_gc)}
    return report


def _synthetic_library(types: int) -> Any:
    """A library with ``types`` types: 10 abstract bases, 8 attributes each, enums, records and
    associations, like an industrial model."""
    attributes = [
        {"id": f"A{i}", "valueType": vt}
        for i, vt in enumerate(["String", "Double", "Int", "Boolean", "DateTime", "Int64"] * 4)
    ]
    attributes += [
        {"id": "Mode", "valueType": "Enum", "valueCkEnumId": "Bench.Big/Mode"},
        {"id": "Point", "valueType": "Record", "valueCkRecordId": "Bench.Big/Sample"},
    ]
    bases = 10
    type_docs = []
    for i in range(types):
        base = i < bases
        attrs = [
            {"id": f"Bench.Big/A{(i * 3 + k) % 24}", "name": f"F{i}x{k}", "isOptional": True}
            for k in range(6)
        ] + [
            {"id": "Bench.Big/Mode", "name": f"Mode{i}", "isOptional": True},
            {"id": "Bench.Big/Point", "name": f"Point{i}", "isOptional": True},
        ]
        doc: dict[str, Any] = {
            "typeId": f"T{i}",
            "derivedFromCkTypeId": "System/Entity" if base else f"Bench.Big/T{i % bases}",
            "isAbstract": base,
            "attributes": attrs,
        }
        if not base:
            doc["associations"] = [
                {"id": "Bench.Big/Feeds", "targetCkTypeId": f"Bench.Big/T{(i + 1) % bases}"}
            ]
        type_docs.append(doc)
    compiled = {
        "modelId": "Bench.Big-1.0.0",
        "dependencies": ["System-[2.0,3.0)"],
        "attributes": attributes,
        "enums": [{"enumId": "Mode", "values": [{"key": k, "name": f"Mode{k}"} for k in range(5)]}],
        "records": [
            {
                "recordId": "Sample",
                "attributes": [
                    {"id": "Bench.Big/A1", "name": "Value"},
                    {"id": "Bench.Big/A4", "name": "At"},
                ],
            }
        ],
        "associationRoles": [
            {
                "id": "Feeds",
                "outboundName": "FeedsInto",
                "outboundMultiplicity": "ZeroOrOne",
                "inboundName": "FedBy",
                "inboundMultiplicity": "N",
            }
        ],
        "types": type_docs,
    }
    return load_library_from_documents([("bench-big.yaml", compiled)])


def schema_build(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Generate the tenant schema of a 150-type model: time and retained memory."""
    from workbench.ck.resolver import resolve_model
    from workbench.ck.system import system_library
    from workbench.graphql import build_schema

    types = 30 if quick else 150
    samples = 3 if quick else 10
    report = BenchReport(
        "schema-build",
        quick,
        "in memory (no store involved)",
        {"types": types, "attributes_per_type": 8, "samples": samples},
    )
    library = _synthetic_library(types)
    with timer() as resolve_elapsed:
        model = resolve_model([system_library(), library])
    build_schema(model)
    builds = time_calls(lambda: build_schema(model), samples)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build_schema(model)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    stats = percentiles(builds)
    seconds = stats["p50_ms"] / 1000
    memory_mb = (after - before) / 2**20
    report.add("schema build p50", seconds, "s", "< 1", seconds < 1)
    report.add("schema memory (retained)", memory_mb, "MB", "< 30", memory_mb < 30)
    report.add("model resolution (baseline)", resolve_elapsed(), "s")
    report.add("build / model resolution", seconds / max(resolve_elapsed(), 1e-9), "x")
    report.baseline = {
        "model_resolution_s": round(resolve_elapsed(), 4),
        "graphql_types": len(kept.graphql_schema.type_map),
    }
    return report
