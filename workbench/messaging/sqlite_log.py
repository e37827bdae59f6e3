"""The embedded cross-process bus: an event log in SQLite (WAL) that every process tails.

One file per tenant. Publishing appends rows to ``messages`` in one transaction (a batch is one
commit) and wakes the tails of every process (:mod:`workbench.messaging.sqlite_wake`); tails also
poll every ``poll_interval`` seconds in case a wake-up was lost. Order is the commit order
(``seq``). Durable groups keep a position in the log; a member claims messages into ``inflight``
with a lease it renews while it runs, so the messages of a member that died are handed out again
when the lease runs out (``lease_seconds``) and those of a member that closed at once. Acked ids
are remembered for ``dedupe_seconds``; dead letters keep a copy of the message and the reason.
Messages behind every group and older than ``retention_seconds`` are deleted now and then.

Durability: ``synchronous=NORMAL`` in WAL mode — a committed message survives any process crash;
a power loss may lose the last transactions (set ``synchronous="FULL"`` to rule that out).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import BackendUnavailable, ValidationError
from workbench.messaging.base import (
    DEFAULT_MAX_DELIVERIES,
    Consumer,
    DeadLetter,
    Delivery,
    MessageBus,
    OutgoingMessage,
    Subscription,
    new_message_id,
    topic_matches,
    validate_name,
)
from workbench.messaging.codec import decode_body, encode_body
from workbench.messaging.sqlite_wake import WakeListener, new_sender, wake_all, wake_dir

__all__ = ["SqliteLogBus"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key TEXT NOT NULL,
  id TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_topic ON messages(topic, seq);
CREATE TABLE IF NOT EXISTS groups(
  name TEXT PRIMARY KEY, topic TEXT NOT NULL, pattern TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inflight(
  grp TEXT NOT NULL, seq INTEGER NOT NULL, deliveries INTEGER NOT NULL, owner TEXT,
  lease REAL NOT NULL, PRIMARY KEY (grp, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acked(
  grp TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (grp, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead(
  grp TEXT NOT NULL, topic TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL,
  headers TEXT NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL, deliveries INTEGER NOT NULL,
  at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS dead_by_group ON dead(grp);
"""
_CLOSED = object()
#: publishes between two prunes of the log
_PRUNE_EVERY = 5000


class SqliteLogBus(MessageBus):
    """A tenant's bus in the SQLite file ``path`` (created with its directory when missing)."""

    def __init__(
        self,
        path: Path | str,
        tenant: str | None = None,
        *,
        poll_interval: float = 0.25,
        lease_seconds: float = 30.0,
        retention_seconds: float = 3600.0,
        dedupe_seconds: float = 86400.0,
        synchronous: str = "NORMAL",
        subscriber_maxsize: int = 10_000,
    ) -> None:
        self.path = Path(path)
        self.tenant = tenant
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.retention_seconds = retention_seconds
        self.dedupe_seconds = dedupe_seconds
        self._maxsize = subscriber_maxsize
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"cannot open the bus log {self.path}: {exc}; check that the directory is "
                "writable (WORKBENCH_BUS_URL, or the data directory of `workbench up`)"
            ) from exc
        self._lock = threading.RLock()
        self._wake_dir = wake_dir(self.path)
        self._sender = new_sender()
        self._listeners: dict[asyncio.AbstractEventLoop, WakeListener] = {}
        self._tailers: dict[asyncio.AbstractEventLoop, _Tailer] = {}
        self._since_prune = 0
        self._closed = False

    # ---- plumbing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"the bus log {self.path} is closed")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"the bus log {self.path} is closed")
            return self._conn.execute(sql, params).fetchall()

    def listener(self, loop: asyncio.AbstractEventLoop) -> WakeListener:
        with self._lock:
            found = self._listeners.get(loop)
            if found is None:
                found = self._listeners[loop] = WakeListener(self._wake_dir, loop)
            return found

    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM messages")[0][0])

    # ---- publishing ----------------------------------------------------------------------

    @staticmethod
    def _row(message: OutgoingMessage, now: float) -> tuple[Any, ...]:
        validate_name("topic", message.topic)
        headers = json.dumps(dict(message.headers))
        return (message.topic, message.key, message.id, headers, encode_body(message.body), now)

    def _append(self, messages: Sequence[OutgoingMessage]) -> None:
        now = time.time()
        rows = [self._row(m, now) for m in messages]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO messages(topic, key, id, headers, body, ts) VALUES (?,?,?,?,?,?)",
                rows,
            )
            self._since_prune += len(rows)
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                self._prune(conn, now)
        wake_all(self._wake_dir, self._sender)

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        floor = conn.execute(
            "SELECT MIN(s) FROM (SELECT MIN(position) + 1 AS s FROM groups "
            "UNION ALL SELECT MIN(seq) FROM inflight)"
        ).fetchone()[0]
        horizon = now - self.retention_seconds
        if floor is None:
            conn.execute("DELETE FROM messages WHERE ts < ?", (horizon,))
        else:
            conn.execute("DELETE FROM messages WHERE seq < ? AND ts < ?", (floor, horizon))
        conn.execute("DELETE FROM acked WHERE at < ?", (now - self.dedupe_seconds,))

    def publish(
        self,
        topic: str,
        message: Any,
        *,
        key: str = "",
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        outgoing = OutgoingMessage(
            topic, message, key, message_id or new_message_id(), dict(headers or {})
        )
        self._append([outgoing])

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            await asyncio.to_thread(self._append, list(messages))

    # ---- transient subscriptions ---------------------------------------------------------

    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        loop = asyncio.get_running_loop()
        subscription = _SqliteSubscription(self, topic, pattern, self.last_seq(), self._maxsize)
        with self._lock:
            tailer = self._tailers.get(loop)
            if tailer is None or tailer.finished:
                tailer = self._tailers[loop] = _Tailer(self, loop, subscription.start)
            tailer.add(subscription)
        return subscription

    def _forget_tailer(self, tailer: _Tailer) -> None:
        with self._lock:
            if self._tailers.get(tailer.loop) is tailer:
                del self._tailers[tailer.loop]

    # ---- groups --------------------------------------------------------------------------

    def _ensure(self, topic: str, group: str, pattern: str) -> None:
        validate_name("topic", topic)
        validate_name("group", group)
        with self._write() as conn:
            row = conn.execute(
                "SELECT topic, pattern FROM groups WHERE name=?", (group,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO groups VALUES (?,?,?,(SELECT COALESCE(MAX(seq),0) FROM messages))",
                    (group, topic, pattern),
                )
            elif tuple(row) != (topic, pattern):
                raise ValidationError(
                    f"group {group!r} already consumes {row[0]!r} with pattern {row[1]!r}, "
                    f"not {topic!r} with {pattern!r}: use another group name"
                )

    async def ensure_group(self, topic: str, group: str, pattern: str = "#") -> None:
        await asyncio.to_thread(self._ensure, topic, group, pattern)

    def consume(
        self,
        topic: str,
        pattern: str = "#",
        *,
        group: str,
        prefetch: int = 100,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> Consumer:
        return _SqliteConsumer(self, topic, pattern, group, prefetch, max_deliveries)

    def _group_row(self, topic: str, group: str) -> tuple[str, int]:
        rows = self._read("SELECT topic, pattern, position FROM groups WHERE name=?", (group,))
        if not rows or rows[0][0] != topic:
            raise ValidationError(
                f"there is no group {group!r} on topic {topic!r}: create it with ensure_group "
                "or consume"
            )
        return rows[0][1], rows[0][2]

    async def dead_letters(self, topic: str, group: str, *, limit: int = 100) -> list[DeadLetter]:
        self._group_row(topic, group)
        rows = self._read(
            "SELECT topic, key, id, headers, body, reason, deliveries, at FROM dead "
            "WHERE grp=? ORDER BY rowid LIMIT ?",
            (group, limit),
        )
        return [
            DeadLetter(
                r[0],
                r[1],
                r[2],
                _decode_or_raw(r[4]),
                r[5],
                r[6],
                json.loads(r[3]),
                datetime.fromtimestamp(r[7], UTC),
            )
            for r in rows
        ]

    async def pending(self, topic: str, group: str) -> int:
        pattern, position = self._group_row(topic, group)
        ready = self._read(
            "SELECT m.key FROM messages m WHERE m.topic=? AND m.seq>? AND NOT EXISTS "
            "(SELECT 1 FROM acked a WHERE a.grp=? AND a.id=m.id)",
            (topic, position, group),
        )
        held = self._read("SELECT COUNT(*) FROM inflight WHERE grp=?", (group,))[0][0]
        return sum(1 for (key,) in ready if topic_matches(pattern, key)) + int(held)

    def _bury(
        self, conn: sqlite3.Connection, group: str, seq: int, reason: str, deliveries: int
    ) -> None:
        conn.execute(
            "INSERT INTO dead SELECT ?, topic, key, id, headers, body, ?, ?, ? FROM messages "
            "WHERE seq=?",
            (group, reason, deliveries, time.time(), seq),
        )
        conn.execute("DELETE FROM inflight WHERE grp=? AND seq=?", (group, seq))

    # ---- closing -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners, self._listeners = list(self._listeners.items()), {}
            tailers, self._tailers = list(self._tailers.values()), {}
            self._conn.close()
            self._sender.close()
        for tailer in tailers:
            tailer.stop()
        for loop, listener in listeners:
            _on_loop(loop, listener.close)


def _on_loop(loop: asyncio.AbstractEventLoop, call: Any) -> None:
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop or not loop.is_running():
        call()
    else:
        loop.call_soon_threadsafe(call)


def _decode_or_raw(data: bytes) -> Any:
    try:
        return decode_body(data)
    except ValueError:
        return data


class _SqliteSubscription(Subscription):
    def __init__(
        self, bus: SqliteLogBus, topic: str, pattern: str, start: int, maxsize: int
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.pattern = pattern
        self.start = start
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.closed = False
        self.tailer: _Tailer | None = None

    def deliver(self, body: Any) -> None:
        if self.closed:
            return
        if self.queue.full():
            self.queue.get_nowait()  # a slow subscriber loses its oldest message
        self.queue.put_nowait(body)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            body = await self.queue.get()
            if body is _CLOSED:
                return
            yield body

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.tailer is not None:
            self.tailer.remove(self)
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSED)


class _Tailer:
    """Reads new messages for the subscriptions of one event loop."""

    def __init__(self, bus: SqliteLogBus, loop: asyncio.AbstractEventLoop, position: int) -> None:
        self.bus = bus
        self.loop = loop
        self.position = position
        self.subscriptions: list[_SqliteSubscription] = []
        self.finished = False
        self._listener = bus.listener(loop)
        self._task = loop.create_task(self._run())

    def add(self, subscription: _SqliteSubscription) -> None:
        subscription.tailer = self
        self.subscriptions.append(subscription)

    def remove(self, subscription: _SqliteSubscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        if not self.subscriptions:
            self.stop()

    def stop(self) -> None:
        self.finished = True
        self.bus._forget_tailer(self)
        _on_loop(self.loop, self._listener.wake)

    async def _run(self) -> None:
        while not self.finished and self.subscriptions:
            topics = sorted({s.topic for s in self.subscriptions})
            marks = ",".join("?" * len(topics))
            try:
                rows = self.bus._read(
                    f"SELECT seq, topic, key, body FROM messages WHERE seq > ? "
                    f"AND topic IN ({marks}) ORDER BY seq LIMIT 1000",
                    (self.position, *topics),
                )
            except BackendUnavailable:
                return
            for seq, topic, key, data in rows:
                self.position = seq
                targets = [
                    s
                    for s in self.subscriptions
                    if s.topic == topic and seq > s.start and topic_matches(s.pattern, key)
                ]
                if targets:
                    body = _decode_or_raw(data)
                    for subscription in targets:
                        subscription.deliver(body)
            if len(rows) < 1000:
                await self._listener.wait(self.bus.poll_interval)


class _SqliteConsumer(Consumer):
    def __init__(
        self,
        bus: SqliteLogBus,
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
