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
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import BackendUnavailable, ValidationError
from workbench.messaging.base import (
    DEFAULT_MAX_DELIVERIES,
    Consumer,
    DeadLetter,
    MessageBus,
    OutgoingMessage,
    Subscription,
    new_message_id,
    topic_matches,
    validate_name,
)
from workbench.messaging.codec import decode_or_raw, encode_body
from workbench.messaging.queued import QueuedSubscription
from workbench.messaging.sqlite_consumer import SqliteConsumer
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
#: publishes between two prunes of the log
_PRUNE_EVERY = 5000


class SqliteLogBus(MessageBus):
    """A tenant's bus in the SQLite file ``path`` (created with its directory when missing)."""

    wire_bodies = True  # bodies go through encode_body

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

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            self._append(list(messages))

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            await asyncio.to_thread(self._append, list(messages))

    # ---- transient subscriptions ---------------------------------------------------------

    def subscribe(self, topic: str, pattern: str = "#") -> Subscription:
        loop = asyncio.get_running_loop()
        subscription = _SqliteSubscription(topic, pattern, self.last_seq(), self._maxsize)
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
        return SqliteConsumer(self, topic, pattern, group, prefetch, max_deliveries)

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
                decode_or_raw(r[4]),
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


class _SqliteSubscription(QueuedSubscription):
    def __init__(self, topic: str, pattern: str, start: int, maxsize: int) -> None:
        super().__init__(topic, pattern, maxsize)
        self.start = start
        self.tailer: _Tailer | None = None

    async def detach(self) -> None:
        if self.tailer is not None:
            self.tailer.remove(self)


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
                    body = decode_or_raw(data)
                    for subscription in targets:
                        subscription.deliver(body)
            if len(rows) < 1000:
                await self._listener.wait(self.bus.poll_interval)
