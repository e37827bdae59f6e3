"""What an edge adapter runs with: ``workbench adapter run --edge``.

An edge adapter talks only to its controller (WebSocket) and its bus link. Everything it
produces goes through the durable :class:`~workbench.communication.outbox.Outbox` first, so it
keeps polling and producing while the mesh (controller, RabbitMQ) is unreachable and delivers
the backlog in order when the link is back:

- :class:`EdgeTenant` is the tenant its pipelines see: stream writes
  (``SaveStreamDataInArchive@1``) become messages on the ``stream-points`` topic (one message
  per CK type and batch, ``{"ckTypeId", "points"}``, routing key the CK type), stored in the
  outbox; entity reads and writes need the Asset Repository, which an edge adapter does not
  reach (send the data to a mesh adapter's pipeline with ``ToPipelineDataEvent@1`` instead);
- :class:`EdgeState` keeps, beside the outbox, the last configuration the controller pushed
  (mode 0600: it may hold the secrets of the configurations it uses), so a restarted edge
  adapter runs its pipelines before the controller is reachable again.

A message's id is derived from its points (CK type, and each point's rtId, timestamp and
attribute names), so a batch re-sent after a lost confirm is dropped by the bus's groups, and
values of two protocols for one entity in the same second are different messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.communication.outbox import Outbox, OutboxBus
from workbench.errors import ValidationError, WorkbenchError
from workbench.messaging.base import STREAM_POINTS, MessageBus, OutgoingMessage
from workbench.streams.bus_ingest import STREAM_POINTS_GROUP  # the stream service's group

__all__ = [
    "STREAM_POINTS_GROUP",
    "EdgeState",
    "EdgeTenant",
    "stream_points_message",
]

_CONFIGURATION_FILE = "configuration.json"
_OUTBOX_FILE = "outbox.sqlite"


_KEY_FIELDS = ("rtId", "timestamp", "timeStamp")


def stream_points_message(ck_type_id: str, points: Sequence[Mapping[str, Any]]) -> OutgoingMessage:
    """The ``stream-points`` message of one batch, its id derived from the points (the bytes
    hashed are made in one piece: a 1,000-point batch in a third of the time it took to feed
    them to the hash point by point, with the same id)."""
    tails: dict[tuple[str, ...], str] = {}  # the sorted attribute names, once per key shape
    parts = []
    for point in points:
        shape = tuple(point)
        tail = tails.get(shape)
        if tail is None:
            names = sorted(k for k in point if k not in _KEY_FIELDS)
            tail = tails[shape] = "".join("," + name for name in names)
        stamp = point.get("timestamp", point.get("timeStamp"))
        parts.append(f"\0{point.get('rtId')!s}@{stamp!s}{tail}")
    digest = hashlib.blake2b(ck_type_id.encode(), digest_size=12)
    digest.update("".join(parts).encode())
    body = {"ckTypeId": ck_type_id, "points": list(points)}
    return OutgoingMessage(STREAM_POINTS, body, ck_type_id, "points-" + digest.hexdigest())


class EdgeTypeStreams:
    """``tenant.streams(ck_type_id)`` of an edge adapter: ``write`` goes into the outbox."""

    #: ``write`` takes the points as dicts (``SaveStreamDataInArchive@1`` hands them over as
    #: they are instead of as an Arrow table, which would be turned back into dicts here)
    takes_rows = True

    def __init__(self, tenant: EdgeTenant, ck_type_id: str) -> None:
        self.tenant = tenant
        self.ck_type_id = ck_type_id

    def write(self, points: Any) -> int:
        """Store the batch (dicts, or an Arrow table) in the outbox (any thread); how many
        points it holds."""
        if hasattr(points, "to_pylist"):
            points = points.to_pylist()
        if not points:
            return 0
        self.tenant.bus.outbox.put_many([stream_points_message(self.ck_type_id, points)])
        self.tenant.bus.wake()
        return len(points)

    def read(self, *_args: Any, **_kwargs: Any) -> Any:
        raise self.tenant.no_platform("reading stream data")


class _NoEntities:
    def __init__(self, tenant: EdgeTenant) -> None:
        self._tenant = tenant

    def __getattr__(self, name: str) -> Any:
        raise self._tenant.no_platform(f"entities.{name}")


class EdgeTenant:
    """The tenant an edge adapter's pipelines see (see the module docstring)."""

    def __init__(self, tenant_id: str, bus: OutboxBus) -> None:
        self.id = tenant_id
        self.bus = bus
        self.entities = _NoEntities(self)

    def streams(self, ck_type_id: str) -> EdgeTypeStreams:
        return EdgeTypeStreams(self, ck_type_id)

    def close(self) -> None:
        """Nothing to release (the bus is closed by its owner)."""

    def no_platform(self, what: str) -> WorkbenchError:
        return ValidationError(
            f"{what}: an edge adapter reaches only its controller and its bus, not the Asset "
            "Repository; write stream data with SaveStreamDataInArchive@1, or hand the data to a "
            "pipeline on a mesh adapter with ToPipelineDataEvent@1"
        )


class EdgeState:
    """An edge adapter's local state directory: the outbox and the last configuration."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    @property
    def outbox_path(self) -> Path:
        return self.directory / _OUTBOX_FILE

    def open_bus(
        self,
        link: MessageBus,
        *,
        max_messages: int = 1_000_000,
        max_age_seconds: float = 7 * 86400.0,
        batch: int = 500,
    ) -> OutboxBus:
        """The adapter's bus: ``link`` behind the outbox, the stream-points group ensured."""
        outbox = Outbox(
            self.outbox_path, max_messages=max_messages, max_age_seconds=max_age_seconds
        )
        bus = OutboxBus(link, outbox, batch=batch)
        bus.require_group(STREAM_POINTS, STREAM_POINTS_GROUP)
        return bus

    def save_configuration(self, message: Mapping[str, Any]) -> None:
        """Keep the configuration the controller pushed (written atomically, mode 0600)."""
        path = self.directory / _CONFIGURATION_FILE
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(message, handle, default=str)
        os.replace(temporary, path)

    def load_configuration(self) -> dict[str, Any] | None:
        """The last configuration pushed, or None (never configured, or unreadable)."""
        path = self.directory / _CONFIGURATION_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


async def wait_synced(bus: OutboxBus, timeout: float = 60.0) -> int:
    """Wait until the outbox is empty; the last synced sequence number (tests, shutdown)."""
    async with asyncio.timeout(timeout):
        while bus.outbox.backlog():
            await bus.synced.wait()
            bus.synced.clear()
    return bus.outbox.delivered_sequence
