"""The demo tenant that ``make run`` builds: the Demo.Energy library, its sample entities and a
week of synthetic 1-second stream data for the energy meters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.errors import NotFound

__all__ = ["DEMO_TENANT", "build_demo_tenant", "demo_data_dir"]

DEMO_TENANT = "demo"


def demo_data_dir() -> Path:
    """``notebooks/data/Demo.Energy`` of the source checkout (the demo's library and entities)."""
    candidate = Path(__file__).resolve().parents[2] / "notebooks" / "data" / "Demo.Energy"
    if not (candidate / "ConstructionKit" / "ckModel.yaml").is_file():
        raise NotFound(
            f"demo data not found at {candidate}; run the demo from a source checkout "
            "of Mesh Workbench (it ships notebooks/data/Demo.Energy)"
        )
    return candidate


def build_demo_tenant(
    workbench: Any,
    tenant_id: str = DEMO_TENANT,
    *,
    days: int = 7,
    with_streams: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Create (or refresh) the demo tenant; returns a summary of what it holds."""
    from workbench.runtime.files import import_runtime_file

    data = demo_data_dir()
    if not workbench.registry.exists(tenant_id):
        workbench.tenants.create(tenant_id, description="Demo.Energy sample tenant")
        say(f"created tenant {tenant_id}")
    tenant = workbench.tenant(tenant_id)
    report = tenant.ck.import_library(data / "ConstructionKit")
    say(f"library {report.model_id}" + (" (already there)" if report.unchanged else " imported"))
    summary = import_runtime_file(tenant.entities, tenant.model, data / "runtime-sample.yaml")
    say(f"entities: {summary['created']} created, {summary['updated']} updated")
    points = 0
    if with_streams:
        points = _demo_streams(tenant, days, say)
    model = tenant.model
    counts = {
        t.id: tenant.entities.count(t.id)
        for t in model.types.values()
        if not t.is_abstract and t.library != "System"
    }
    return {
        "tenant": tenant_id,
        "libraries": sorted(lib.model_id for lib in model.libraries.values()),
        "entities": counts,
        "streamPoints": points,
    }


def _demo_streams(tenant: Any, days: int, say: Callable[[str], None]) -> int:
    from workbench.streams.demo import demo_points

    meter_type = "Demo.Energy/EnergyMeter"
    meters = [e.rt_id for e in tenant.entities.find(meter_type, first=None)]
    streams = tenant.streams(meter_type)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    existing = streams.read(start, end, rt_ids=meters[:1], first=1)
    if len(existing.rows()):
        say("stream data already present")
        return 0
    table = demo_points(meters, start, days=days, step="1s")
    written = int(streams.write(table))
    say(f"stream data: {written:,} points for {len(meters)} meters ({days} days at 1 s)")
    return written
