"""``workbench bench bus --quick`` measures the embedded log and the in-process bus."""

from __future__ import annotations

from workbench.bench.bus import bus


def test_the_bus_benchmark_reports_throughput_and_cross_process_latency() -> None:
    report = bus(quick=True)
    figures = {m.name: m.value for m in report.metrics}
    assert report.backend == "embedded SQLite log"
    assert figures["publish_many (confirmed batches of 1000)"] > 0
    assert figures["consume + ack (durable group)"] > 0
    assert (
        0 < figures["latency to another process p50"] <= figures["latency to another process p99"]
    )
    assert report.baseline["batched_over_single"] > 1


def test_the_in_process_bus_has_no_cross_process_latency_to_report() -> None:
    report = bus(quick=True, backend="memory://")
    names = [m.name for m in report.metrics]
    assert "consume + ack (durable group)" in names
    assert not [n for n in names if n.startswith("latency")]
