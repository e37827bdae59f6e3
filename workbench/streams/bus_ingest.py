"""Stream points from the bus into a tenant's stream store: the consumer of ``stream-points``.

Adapters (an edge adapter's outbox, see :mod:`workbench.communication.edge`) publish batches of
points as messages ``{"ckTypeId": ..., "points": [{"rtId", "timestamp", <attribute>...}]}`` on
the tenant's ``stream-points`` topic. :class:`StreamPointsConsumer` is a member of the durable
group :data:`STREAM_POINTS_GROUP`: it gathers the messages that arrive within ``linger_seconds``
(up to ``max_points``), writes them with one stream-service write per CK type, and acks them only
after the write. A consumer that stops (or a process that dies) before the ack gets its messages
redelivered to the next member; writes are upserts on (rtId, timestamp), so a redelivered batch
lands once. A message that can never be written (no such type or entity, a bad value) goes to
the group's dead-letter queue with the reason; while the store is unavailable the batch is
written again with backoff (its messages stay unacked, so nothing is lost or dead-lettered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.errors import NotFound, ValidationError, WorkbenchError
from workbench.messaging.base import STREAM_POINTS, Delivery, MessageBus

__all__ = ["STREAM_POINTS_GROUP", "IngestCounts", "StreamPointsConsumer", "stream_points_topic"]

log = logging.getLogger("workbench.streams.bus_ingest")

#: the durable group of ``stream-points`` that writes to the stream store (kept for it while the
#: writer is away; an edge adapter creates it before its first delivery)
STREAM_POINTS_GROUP = "stream-service"

#: what writes one CK type's points (``tenant.streams(ck_type_id).write``); runs in a thread
WritePoints = Callable[[str, list[Mapping[str, Any]]], int]


def stream_points_topic(tenant_id: str) -> str:
    """The multi-tenant address of a tenant's stream points (``tenants.<id>.stream-points``)."""
    return f"tenants.{tenant_id}.{STREAM_POINTS}"


@dataclass
class IngestCounts:
    """What a consumer did so far."""

    messages: int = 0
    points: int = 0
    writes: int = 0
    dead: int = 0
    retried: int = 0


class StreamPointsConsumer:
    """Writes the stream points of one tenant's ``topic`` with ``write`` (see module doc)."""

    def __init__(
        self,
        bus: MessageBus,
        topic: str,
        write: WritePoints,
        *,
        group: str = STREAM_POINTS_GROUP,
        max_points: int = 10_000,
        linger_seconds: float = 0.1,
        prefetch: int = 500,
        retry_seconds: float = 1.0,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.write = write
        self.group = group
        self.max_points = max_points
        self.linger_seconds = linger_seconds
        self.prefetch = prefetch
        self.retry_seconds = retry_seconds
        self.counts = IngestCounts()

    async def run(self) -> None:
        """Consume until cancelled (leaving the group: unacked messages are redelivered)."""
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        consumer = self.bus.consume(self.topic, "#", group=self.group, prefetch=self.prefetch)

        async def pump() -> None:
            async for delivery in consumer:
                await queue.put(delivery)

        pumping = asyncio.create_task(pump(), name=f"pump-{self.topic}")
        try:
            while True:
                batch = await self._gather(queue, pumping)
                await self._write(batch)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping
            await consumer.close()

    async def _gather(
        self, queue: asyncio.Queue[Delivery], pumping: asyncio.Task[None]
    ) -> list[Delivery]:
        """The next batch: the first message (waiting for it), then what arrives within the
        linger time, up to ``max_points``."""
        getting = asyncio.ensure_future(queue.get())
        await asyncio.wait({getting, pumping}, return_when=asyncio.FIRST_COMPLETED)
        if not getting.done():
            getting.cancel()
            pumping.result()  # the consumer ended: raise its error
            raise WorkbenchError(f"the consumer of {self.topic} ended")
        batch = [getting.result()]
        size = _size(batch[0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_seconds
        while size < self.max_points:
            if queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            batch.append(item)
            size += _size(item)
        return batch

    async def _write(self, batch: Sequence[Delivery]) -> None:
        by_type: dict[str, list[tuple[Delivery, list[Mapping[str, Any]]]]] = {}
        for delivery in batch:
            body = delivery.body
            ck_type_id = body.get("ckTypeId") if isinstance(body, dict) else None
            points = body.get("points") if isinstance(body, dict) else None
            if not isinstance(ck_type_id, str) or not isinstance(points, list):
                await self._dead(
                    delivery,
                    "a stream-points message is {'ckTypeId': ..., 'points': [...]}; "
                    f"got {type(body).__name__}",
                )
                continue
            by_type.setdefault(ck_type_id, []).append((delivery, points))
        for ck_type_id, items in by_type.items():
            points = [p for _, chunk in items for p in chunk]
            try:
                await self._store(ck_type_id, points)
            except (ValidationError, NotFound):
                # one message spoils the batch: write them one by one, dead-letter the bad ones
                for delivery, chunk in items:
                    await self._write_one(ck_type_id, delivery, chunk)
                continue
            for delivery, chunk in items:
                await delivery.ack()
                self.counts.messages += 1
                self.counts.points += len(chunk)

    async def _write_one(
        self, ck_type_id: str, delivery: Delivery, points: list[Mapping[str, Any]]
    ) -> None:
        try:
            await self._store(ck_type_id, points)
        except (ValidationError, NotFound) as exc:
            await self._dead(delivery, f"stream points for {ck_type_id}: {exc}")
        else:
            await delivery.ack()
            self.counts.messages += 1
            self.counts.points += len(points)

    async def _store(self, ck_type_id: str, points: list[Mapping[str, Any]]) -> None:
        """Write, retrying with backoff while the store fails otherwise than on the data (the
        messages stay unacked meanwhile, so they are not dead-lettered by redeliveries)."""
        pause = self.retry_seconds
        while True:
            try:
                await asyncio.to_thread(self.write, ck_type_id, points)
            except (ValidationError, NotFound):
                raise
            except Exception as exc:
                log.warning(
                    "stream points not written; retrying",
                    extra={"topic": self.topic, "error": repr(exc), "retryIn": pause},
                )
                self.counts.retried += 1
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            else:
                self.counts.writes += 1
                return

    async def _dead(self, delivery: Delivery, reason: str) -> None:
        log.warning("stream points dead-lettered", extra={"topic": self.topic, "reason": reason})
        self.counts.dead += 1
        await delivery.nack(requeue=False, reason=reason)


def _size(delivery: Delivery) -> int:
    body = delivery.body
    points = body.get("points") if isinstance(body, dict) else None
    return len(points) if isinstance(points, list) else 1
