"""BufferData@1: concurrent executions' polls are written in one batch, each execution ends only
once its batch is written (so a trigger acks a message only after its data is stored), a failed
batch fails every execution in it; FromPipelineDataEvent@1 ``maxConcurrency`` fills batches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import METER_1, METER_2
from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.communication.nodes.triggers import FromPipelineDataEvent
from workbench.messaging.base import OutgoingMessage, dataflow_topic
from workbench.messaging.local import LocalMessageBus

PIPELINE = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: BufferData@1
    path: $.updates
    bufferTime: 00:00:05
    maxItems: 3
    transformations:
      - type: SaveStreamDataInArchive@1
        path: $.items
        ckTypeId: Demo.Energy/EnergyMeter
        targetPath: $.saved
      - type: PrintDebug@1
        path: $.saved
"""


def _poll(second: int, rt_ids: tuple[str, ...] = (METER_1, METER_2)) -> dict[str, Any]:
    stamp = f"2026-03-01T10:00:{second:02d}+00:00"
    return {
        "updates": [
            {"rtId": r, "timestamp": stamp, "attributes": {"Voltage": 230.0 + second}}
            for r in rt_ids
        ]
    }


def test_concurrent_polls_are_written_in_one_batch(demo: Any) -> None:
    pipeline = build_pipeline(PIPELINE, name="buffered")
    streams = demo.streams("Demo.Energy/EnergyMeter")

    async def run() -> list[Any]:
        env = ExecutionEnvironment(pipeline_name="buffered", tenant=demo)
        first = asyncio.create_task(pipeline.execute(_poll(0), env))
        second = asyncio.create_task(pipeline.execute(_poll(1), env))
        buffer = pipeline.transformations[0]
        while len(buffer._items) < 2:  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # until both executions reached the buffer
        # both are buffered: neither has ended, nothing is written
        assert not first.done()
        assert not second.done()
        assert streams.read().to_arrow().num_rows == 0
        third = await pipeline.execute(_poll(2), env)  # the third fills the batch
        return [await first, await second, third]

    results = asyncio.run(run())
    assert [r.status for r in results] == ["Completed"] * 3
    assert [json.loads(p) for p in results[2].printed] == [{"written": 6}]  # one write of all
    frame = streams.read().to_pandas()
    assert sorted(frame["voltage"]) == [230.0, 230.0, 231.0, 231.0, 232.0, 232.0]


def test_the_buffer_time_flushes_a_partial_batch_and_a_failed_batch_fails_all(demo: Any) -> None:
    definition = PIPELINE.replace("00:00:05", "0.05")
    pipeline = build_pipeline(definition, name="buffered")

    async def run() -> list[Any]:
        env = ExecutionEnvironment(pipeline_name="buffered", tenant=demo)
        alone = await pipeline.execute(_poll(5), env)  # flushed by the buffer time
        bad = _poll(6, ("6560a1b2c3d4e5f6071829ff",))  # no such entity
        failed = await asyncio.gather(pipeline.execute(bad, env), pipeline.execute(_poll(7), env))
        return [alone, *failed]

    alone, bad, good_in_bad_batch = asyncio.run(run())
    assert alone.status == "Completed"
    assert [json.loads(p) for p in alone.printed] == [{"written": 2}]
    assert bad.status == good_in_bad_batch.status == "Failed"
    assert "SaveStreamDataInArchive@1" in str(bad.error)
    assert "6560a1b2c3d4e5f6071829ff" in str(bad.error)
    frame = demo.streams("Demo.Energy/EnergyMeter").read().to_pandas()
    assert sorted(frame["voltage"]) == [235.0, 235.0]  # the failed batch wrote nothing


class _Host:
    tenant_id = "t"
    pipeline_rt_id = "6570c00000000000000000f1"
    data_flow_rt_id = "6570c00000000000000000f0"

    def __init__(self, bus: LocalMessageBus) -> None:
        self.bus = bus

    def consume(self, topic: str, pattern: str, group: str) -> Any:
        return self.bus.consume(topic, pattern, group=group)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_data_events_run_up_to_max_concurrency_at_once(concurrency: int) -> None:
    from workbench.communication.definition import parse_pipeline

    definition = parse_pipeline(
        f"triggers:\n  - type: FromPipelineDataEvent@1\n    maxConcurrency: {concurrency}\n"
        "transformations: []\n"
    )
    trigger = FromPipelineDataEvent(definition.triggers[0])
    bus = LocalMessageBus()
    host = _Host(bus)

    async def run() -> tuple[int, list[int]]:
        topic = dataflow_topic(host.data_flow_rt_id)
        await bus.ensure_group(topic, f"pipeline-{host.pipeline_rt_id}", host.pipeline_rt_id)
        in_flight, most, seen = 0, 0, []
        release = asyncio.Event()

        async def fire(data: Any, _kind: str) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            seen.append(data["n"])
            if len(seen) == 8:
                release.set()
            if concurrency > 1 and len(seen) < 4:
                await release.wait()  # the first executions wait for the later ones to start
            in_flight -= 1

        await bus.publish_many(
            [OutgoingMessage(topic, {"n": n}, host.pipeline_rt_id) for n in range(8)]
        )
        task = asyncio.create_task(trigger.start(host, fire))  # type: ignore[arg-type]
        await asyncio.wait_for(release.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return most, seen

    most, seen = asyncio.run(run())
    assert sorted(seen) == list(range(8))
    assert most == concurrency
