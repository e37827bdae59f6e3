"""``entities-import`` and ``entities-read`` (BENCHMARKS.md).

The model: three types (Plant → Line → Sensor, linked by ParentChild), each with eight
attributes. The baseline is the raw entity store doing the same work in the same run (prepared
:class:`StoredEntity` batches for the import; the store's ``get_many``/``find`` for reads), so the
ratio shows what validation and the service layer cost.
"""

from __future__ import annotations

import random
from dataclasses import replace
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
from workbench.runtime.entity import AssociationInput, EntityInput
from workbench.runtime.ids import new_rt_id
from workbench.storage.base import StoredAssociation, StoredEntity, WriteBatch

__all__ = ["BENCH_LIBRARY", "entities_import", "entities_read"]

BENCH_LIBRARY = """
modelId: Bench.Plant-1.0.0
dependencies:
  - System-[2.0,3.0)
attributes:
  - {id: Code, valueType: String}
  - {id: Batch, valueType: Int}
  - {id: Level, valueType: Double}
  - {id: Active, valueType: Boolean}
  - {id: Installed, valueType: DateTime}
  - id: Kind
    valueType: Enum
    valueCkEnumId: Bench.Plant/Kind
  - {id: Labels, valueType: StringArray}
enums:
  - enumId: Kind
    values: [{key: 0, name: Standard}, {key: 1, name: Critical}, {key: 2, name: Spare}]
types:
  - typeId: Asset
    derivedFromCkTypeId: System/Entity
    isAbstract: true
    attributes:
      - {id: System/Name, name: Name}
      - {id: Bench.Plant/Code, name: Code}
      - {id: Bench.Plant/Batch, name: Batch}
      - {id: Bench.Plant/Level, name: Level}
      - {id: Bench.Plant/Active, name: Active}
      - {id: Bench.Plant/Installed, name: Installed}
      - {id: Bench.Plant/Kind, name: Kind}
      - {id: Bench.Plant/Labels, name: Labels, isOptional: true}
    indexes:
      - {indexType: Unique, fields: [{attributePaths: [Code]}]}
      - {indexType: Ascending, fields: [{attributePaths: [Batch]}]}
  - typeId: Plant
    derivedFromCkTypeId: Bench.Plant/Asset
  - typeId: Line
    derivedFromCkTypeId: Bench.Plant/Asset
    associations: [{id: System/ParentChild, targetCkTypeId: Bench.Plant/Plant}]
  - typeId: Sensor
    derivedFromCkTypeId: Bench.Plant/Asset
    associations: [{id: System/ParentChild, targetCkTypeId: Bench.Plant/Line}]
"""

_KINDS = ("Standard", "Critical", "Spare")


def _attributes(n: int) -> dict[str, Any]:
    return {
        "name": f"asset {n}",
        "code": f"C-{n:08d}",
        "batch": n % 1000,
        "level": (n * 7919 % 10000) / 10.0,
        "active": n % 3 != 0,
        "installed": datetime(2024, 1, 1, tzinfo=UTC).replace(second=n % 60),
        "kind": _KINDS[n % 3],
        "labels": ["a", f"l{n % 10}"],
    }


def _inputs(total: int) -> list[EntityInput]:
    """Plants, lines (50 per plant) and sensors (the rest, linked to lines)."""
    plants = max(1, total // 1000)
    lines = max(1, total // 20)
    items: list[EntityInput] = []
    plant_ids = [new_rt_id() for _ in range(plants)]
    line_ids = [new_rt_id() for _ in range(lines)]
    for rt_id in plant_ids:
        items.append(EntityInput("Bench.Plant/Plant", _attributes(len(items)), rt_id=rt_id))
    for i, rt_id in enumerate(line_ids):
        parent = AssociationInput("System/ParentChild", plant_ids[i % plants])
        items.append(
            EntityInput(
                "Bench.Plant/Line", _attributes(len(items)), rt_id=rt_id, associations=[parent]
            )
        )
    while len(items) < total:
        parent = AssociationInput("System/ParentChild", line_ids[len(items) % lines])
        items.append(
            EntityInput("Bench.Plant/Sensor", _attributes(len(items)), associations=[parent])
        )
    return items


def _tenant(backend: str | None, name: str) -> Any:
    return bench_tenant(BENCH_LIBRARY, backend, name)


def _import(tenant: Any, inputs: list[EntityInput], chunk: int, label: str) -> float:
    with progress(label, len(inputs)) as advance, timer() as elapsed:
        for start in range(0, len(inputs), chunk):
            part = inputs[start : start + chunk]
            # the bulk path `workbench rt import` takes: validated, atomic, nothing returned
            tenant.entities.apply(creates=part, return_entities=False)
            advance(len(part))
    return elapsed()


def _raw_batches(tenant: Any, inputs: list[EntityInput]) -> list[WriteBatch]:
    """The same entities as prepared store batches (what the service hands to the store)."""
    now = datetime.now(UTC)
    model = tenant.model
    from workbench.runtime.values import normalize_attributes

    batches = []
    for start in range(0, len(inputs), 5000):
        batch = WriteBatch()
        for item in inputs[start : start + 5000]:
            rt_id = item.rt_id or new_rt_id()
            ck_type = model.type(item.ck_type_id)
            values = normalize_attributes(model, ck_type, item.attributes)
            batch.inserts.append(StoredEntity(rt_id, ck_type.id, values, 1, now, now))
            for link in item.associations:
                batch.add_associations.append(
                    StoredAssociation(link.role, rt_id, ck_type.id, link.target_rt_id, "")
                )
        batches.append(batch)
    return batches


def entities_import(quick: bool = False, backend: str | None = None) -> BenchReport:
    total = 5_000 if quick else 100_000
    chunk = 5_000
    report = BenchReport(
        "entities-import",
        quick,
        backend or "sqlite (embedded)",
        {"entities": total, "types": 3, "attributes": 8, "chunk": chunk},
    )
    with _tenant(_named(backend, "svc"), "bench-import") as tenant:
        seconds = _import(tenant, _inputs(total), chunk, "service import")
    with _tenant(_named(backend, "raw"), "bench-raw") as tenant:
        batches = _raw_batches(tenant, _inputs(total))
        store = tenant.entity_store
        with progress("raw store import", len(batches)) as advance, timer() as raw_elapsed:
            for batch in batches:
                store.apply(batch)
                advance(1)
        raw_seconds = raw_elapsed()
    rate = total / seconds
    report.add("import rate (service)", rate, "entities/s", ">= 20000", rate >= 20_000)
    report.add("import rate (raw store)", total / raw_seconds, "entities/s")
    report.add("service / raw time ratio", seconds / raw_seconds, "x")
    report.baseline = {"raw_store_seconds": round(raw_seconds, 3)}
    return report


def _named(backend: str | None, suffix: str) -> str | None:
    """A distinct database per run for server backends (``mongodb://h/db`` → ``db_<suffix>``)."""
    if backend is None:
        return None
    head, _, tail = backend.rpartition("/")
    database, _, options = tail.partition("?")
    return f"{head}/{database or 'wbbench'}_{suffix}" + (f"?{options}" if options else "")


def entities_read(quick: bool = False, backend: str | None = None) -> BenchReport:
    total = 20_000 if quick else 1_000_000
    samples = 200 if quick else 2_000
    report = BenchReport(
        "entities-read",
        quick,
        backend or "sqlite (embedded)",
        {"entities": total, "samples": samples, "page": 100},
    )
    with _tenant(_named(backend, "read"), "bench-read") as tenant:
        inputs = _inputs(total)
        batches = _raw_batches(tenant, inputs)
        # fill through the raw store: this benchmark measures reads, not the import
        with progress("loading entities", len(batches)) as advance:
            for batch in batches:
                links = batch.add_associations
                batch.add_associations = [
                    replace(link, target_ck_type_id="Bench.Plant/Line") for link in links
                ]
                tenant.entity_store.apply(batch)
                advance(1)
        ids = [e.rt_id for b in batches for e in b.inserts]
        rng = random.Random(7)
        entities = tenant.entities
        store = tenant.entity_store
        by_id = time_calls(lambda: entities.get(rng.choice(ids)), samples)
        raw_by_id = time_calls(lambda: store.get_many([rng.choice(ids)]), samples)
        query_args = {"where": [("batch", "EQUALS", 0)], "first": 100}
        sensor = "Bench.Plant/Sensor"

        def page() -> None:
            query_args["where"] = [("batch", "EQUALS", rng.randrange(1000))]
            entities.find(sensor, **query_args)

        def raw_page() -> None:
            query = entities.build_query(
                sensor, where=[("batch", "EQUALS", rng.randrange(1000))], first=100
            )
            store.find(query)

        pages = time_calls(page, samples // 4)
        raw_pages = time_calls(raw_page, samples // 4)
    get_stats, raw_get = percentiles(by_id), percentiles(raw_by_id)
    page_stats, raw_page_stats = percentiles(pages), percentiles(raw_pages)
    report.add("get by rtId p50", get_stats["p50_ms"], "ms", "< 0.5", get_stats["p50_ms"] < 0.5)
    report.add("get by rtId p95", get_stats["p95_ms"], "ms")
    report.add("raw store get p50", raw_get["p50_ms"], "ms")
    report.add("filter page of 100 p50", page_stats["p50_ms"], "ms")
    report.add(
        "filter page of 100 p95", page_stats["p95_ms"], "ms", "< 10", page_stats["p95_ms"] < 10
    )
    report.add("raw store page p95", raw_page_stats["p95_ms"], "ms")
    report.add(
        "service / raw page p50 ratio",
        page_stats["p50_ms"] / max(raw_page_stats["p50_ms"], 1e-9),
        "x",
    )
    report.baseline = {"get": raw_get, "page": raw_page_stats}
    return report
