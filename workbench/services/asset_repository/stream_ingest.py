"""The Asset Repository's writer of bus stream points: one
:class:`~workbench.streams.bus_ingest.StreamPointsConsumer` per tenant.

It runs in the process that owns the tenants' stream stores (the Asset Repository, its primary
worker with ``--workers``; an embedded DuckDB file has one writer). Tenants created later are
found on the next scan; a deleted tenant's consumer stops.

The points of a batch arrive as dicts; when they all have the same keys they are handed to the
stream service as an Arrow table (one column per key, built by Arrow), which the service
checks and converts column by column instead of value by value (a 10,000-point batch: about
half the CPU). Points whose keys differ, or a column Arrow cannot hold (mixed types), go as the
dicts, so the service's checks and the rows its errors name are the same either way.

A consumer waits :data:`LINGER_SECONDS` (20 ms) after the first message of a batch for more
(the consumer's own default is 100 ms): while a write runs the next messages queue up, so
batches still grow with the load, but a poll is not held back 100 ms when the rest of the path
is quick (``bench pipeline-ingest`` back to back: 95-108k -> 145-155k points/s, p95 195-294 ->
156-162 ms, the same CPU per point).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from workbench.messaging.base import MessageBus
from workbench.streams.bus_ingest import StreamPointsConsumer, stream_points_topic

__all__ = ["StreamIngest", "points_table"]

log = logging.getLogger("workbench.services.asset_repository.stream_ingest")

#: how long a consumer waits for more messages after the first of a batch
LINGER_SECONDS = 0.02


class StreamIngest:
    """Consumers of every tenant's ``stream-points`` (see the module docstring)."""

    def __init__(
        self, workbench: Any, bus: MessageBus, *, scan_seconds: float = 5.0, **options: Any
    ) -> None:
        self.workbench = workbench
        self.bus = bus
        self.scan_seconds = scan_seconds
        self.options = {"linger_seconds": LINGER_SECONDS, **options}
        self.consumers: dict[str, StreamPointsConsumer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start consuming (call on the service's event loop)."""
        self._scanner = asyncio.create_task(self._scan(), name="stream-ingest")

    async def stop(self) -> None:
        tasks = [t for t in (self._scanner, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _writer(self, tenant_id: str) -> Any:
        def write(ck_type_id: str, points: list[Mapping[str, Any]]) -> int:
            streams = self.workbench.tenant(tenant_id).streams(ck_type_id)
            written: int = streams.write(points_table(points))
            return written

        return write

    async def _scan(self) -> None:
        while True:
            try:
                records = await asyncio.to_thread(self.workbench.tenants.list)
                self.sync({r.id for r in records})
            except Exception as exc:  # a scan that fails tries again on the next one
                log.warning("cannot list tenants for stream ingest", extra={"error": repr(exc)})
            await asyncio.sleep(self.scan_seconds)

    def sync(self, tenant_ids: set[str]) -> None:
        """Consume for exactly ``tenant_ids``; restart a consumer that ended with an error."""
        for tenant_id in sorted(tenant_ids):
            task = self._tasks.get(tenant_id)
            if task is not None and not task.done():
                continue
            if task is not None and not task.cancelled() and task.exception() is not None:
                log.warning(
                    "stream ingest consumer ended; restarting",
                    extra={"tenant": tenant_id, "error": repr(task.exception())},
                )
            consumer = StreamPointsConsumer(
                self.bus, stream_points_topic(tenant_id), self._writer(tenant_id), **self.options
            )
            self.consumers[tenant_id] = consumer
            self._tasks[tenant_id] = asyncio.create_task(
                consumer.run(), name=f"stream-ingest-{tenant_id}"
            )
        for gone in set(self._tasks) - tenant_ids:
            self._tasks.pop(gone).cancel()
            self.consumers.pop(gone, None)


def points_table(points: Sequence[Mapping[str, Any]]) -> pa.Table | Sequence[Mapping[str, Any]]:
    """``points`` as an Arrow table when they all have the same keys and Arrow holds each
    column, else the list itself (see the module docstring)."""
    if not points:
        return points
    first = points[0]
    if not isinstance(first, dict):
        return points
    keys = tuple(first)
    if not all(type(p) is dict and tuple(p) == keys for p in points):
        return points
    try:
        return pa.table({key: pa.array([p[key] for p in points]) for key in keys})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return points
