"""Members of durable groups on :class:`~workbench.messaging.sqlite_log.SqliteLogBus`.

A member claims messages into the ``inflight`` table under a lease it renews every third of
``lease_seconds``; settling deletes (ack), releases (nack with requeue) or buries (dead letter)
the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import socket
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from workbench.errors import BackendUnavailable
from workbench.messaging.base import Consumer, Delivery, topic_matches
from workbench.messaging.codec import decode_body
from workbench.messaging.sqlite_wake import WakeListener, wake_all

__all__ = ["GroupLog", "SqliteConsumer"]


class GroupLog(Protocol):
    """What a member needs of :class:`workbench.messaging.sqlite_log.SqliteLogBus` (a protocol,
    so this module does not import the bus that imports it)."""

    poll_interval: float
    lease_seconds: float
    _wake_dir: Path
    _sender: socket.socket

    def listener(self, loop: asyncio.AbstractEventLoop) -> WakeListener: ...

    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None: ...

    def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _bury(
        self, conn: sqlite3.Connection, group: str, seq: int, reason: str, deliveries: int
    ) -> None: ...


class SqliteConsumer(Consumer):
    """One member of a durable group (see the module docstring)."""

    def __init__(
        self,
        bus: GroupLog,
        topic: str,
        pattern: str,
        group: str,
        prefetch: int,
        max_deliveries: int,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.pattern = pattern
        self.group = group
        self.prefetch = max(1, prefetch)
        self.max = max(1, max_deliveries)
        self.owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._loop = asyncio.get_running_loop()
        self._listener = bus.listener(self._loop)
        self._held: set[int] = set()
        self._buffer: deque[Delivery] = deque()
        self._closed = False
        self._ready = False
        self._heartbeat: asyncio.Task[None] | None = None

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Delivery]:
        if not self._ready:
            await self.bus.ensure_group(self.topic, self.group, self.pattern)
            self._ready = True
            self._heartbeat = self._loop.create_task(self._renew())
        while not self._closed:
            if self._buffer:
                yield self._buffer.popleft()
                continue
            room = self.prefetch - len(self._held)
            if room > 0:
                claimed = await asyncio.to_thread(self._claim, room)
                if claimed:
                    self._buffer.extend(claimed)
                    continue
            await self._listener.wait(self.bus.poll_interval)

    def _claim(self, room: int) -> list[Delivery]:
        if self._closed:
            return []
        bus, group = self.bus, self.group
        now = time.time()
        lease = now + bus.lease_seconds
        taken: dict[int, int] = {}
        with bus._write() as conn:
            stale = conn.execute(
                "SELECT seq, deliveries FROM inflight WHERE grp=? AND (owner IS NULL OR lease<?) "
                "ORDER BY seq LIMIT ?",
                (group, now, room),
            ).fetchall()
            for seq, deliveries in stale:
                if deliveries >= self.max:
                    bus._bury(
                        conn, group, seq, f"delivered {deliveries} times without ack", deliveries
                    )
                    continue
                conn.execute(
                    "UPDATE inflight SET deliveries=?, owner=?, lease=? WHERE grp=? AND seq=?",
                    (deliveries + 1, self.owner, lease, group, seq),
                )
                taken[seq] = deliveries + 1
            position = conn.execute("SELECT position FROM groups WHERE name=?", (group,)).fetchone()
            position = position[0]
            while len(taken) < room:
                rows = conn.execute(
                    "SELECT m.seq, m.key, EXISTS(SELECT 1 FROM acked a WHERE a.grp=? "
                    "AND a.id=m.id) FROM messages m WHERE m.topic=? AND m.seq>? "
                    "ORDER BY m.seq LIMIT ?",
                    (group, self.topic, position, room * 2 + 16),
                ).fetchall()
                for seq, key, acked in rows:
                    if len(taken) == room:
                        break
                    position = seq
                    if acked or not topic_matches(self.pattern, key):
                        continue
                    conn.execute(
                        "INSERT OR IGNORE INTO inflight VALUES (?,?,1,?,?)",
                        (group, seq, self.owner, lease),
                    )
                    taken[seq] = 1
                if len(rows) < room * 2 + 16:
                    break
            conn.execute("UPDATE groups SET position=? WHERE name=?", (position, group))
            return self._deliveries(conn, taken)

    def _deliveries(self, conn: sqlite3.Connection, taken: dict[int, int]) -> list[Delivery]:
        if not taken:
            return []
        marks = ",".join("?" * len(taken))
        rows = conn.execute(
            f"SELECT seq, topic, key, id, headers, body, ts FROM messages "
            f"WHERE seq IN ({marks}) ORDER BY seq",
            list(taken),
        ).fetchall()
        out: list[Delivery] = []
        for seq, topic, key, message_id, headers, data, ts in rows:
            try:
                body = decode_body(data)
            except ValueError as exc:
                self.bus._bury(conn, self.group, seq, f"undecodable body: {exc}", taken[seq])
                continue
            self._held.add(seq)
            out.append(
                Delivery(
                    topic=topic,
                    key=key,
                    id=message_id,
                    body=body,
                    headers=json.loads(headers),
                    delivery_count=taken[seq],
                    timestamp=datetime.fromtimestamp(ts, UTC),
                    settle=functools.partial(self._settle, seq, message_id),
                )
            )
        return out

    async def _settle(
        self, seq: int, message_id: str, action: str, requeue: bool, why: str
    ) -> None:
        await asyncio.to_thread(self._settle_sync, seq, message_id, action, requeue, why)
        self._held.discard(seq)
        self._listener.wake()

    def _settle_sync(self, seq: int, message_id: str, action: str, requeue: bool, why: str) -> None:
        bus, group = self.bus, self.group
        requeued = False
        with bus._write() as conn:
            row = conn.execute(
                "SELECT deliveries FROM inflight WHERE grp=? AND seq=? AND owner=?",
                (group, seq, self.owner),
            ).fetchone()
            if row is None:
                return  # the lease ran out and another member has it now
            deliveries = row[0]
            if action == "ack":
                conn.execute("DELETE FROM inflight WHERE grp=? AND seq=?", (group, seq))
                conn.execute(
                    "INSERT OR REPLACE INTO acked VALUES (?,?,?)", (group, message_id, time.time())
                )
            elif not requeue:
                bus._bury(conn, group, seq, why, deliveries)
            elif deliveries >= self.max:
                reason = f"nacked on delivery {deliveries} of {self.max}: {why}"
                bus._bury(conn, group, seq, reason, deliveries)
            else:
                conn.execute(
                    "UPDATE inflight SET owner=NULL, lease=0 WHERE grp=? AND seq=?", (group, seq)
                )
                requeued = True
        if requeued:
            wake_all(bus._wake_dir, bus._sender)

    async def _renew(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.bus.lease_seconds / 3)
            with contextlib.suppress(BackendUnavailable, sqlite3.Error):
                await asyncio.to_thread(self._renew_sync)

    def _renew_sync(self) -> None:
        with self.bus._write() as conn:
            conn.execute(
                "UPDATE inflight SET lease=? WHERE grp=? AND owner=?",
                (time.time() + self.bus.lease_seconds, self.group, self.owner),
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._buffer.clear()
        self._held.clear()
        with contextlib.suppress(BackendUnavailable, sqlite3.Error):
            await asyncio.to_thread(self._release)
        self._listener.wake()

    def _release(self) -> None:
        bus = self.bus
        with bus._write() as conn:
            conn.execute(
                "UPDATE inflight SET owner=NULL, lease=0 WHERE grp=? AND owner=?",
                (self.group, self.owner),
            )
        wake_all(bus._wake_dir, bus._sender)
