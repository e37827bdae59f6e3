"""The bus contract on the in-process bus and the embedded SQLite log."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.messaging.base import MessageBus
from workbench.messaging.local import LocalMessageBus
from workbench.messaging.sqlite_log import SqliteLogBus
from workbench.testing.message_bus_contract import MessageBusContract


class TestLocalMessageBus(MessageBusContract):
    requires_serializable_bodies = False

    @pytest.fixture
    def bus(self) -> Iterator[MessageBus]:
        bus = LocalMessageBus(tenant="acme")
        yield bus
        bus.close()


class TestSqliteLogBus(MessageBusContract):
    supports_durability = True

    @pytest.fixture
    def bus(self, tmp_path: Path) -> Iterator[MessageBus]:
        bus = SqliteLogBus(tmp_path / "acme.bus.db", "acme")
        yield bus
        bus.close()

    def reopen(self, bus: MessageBus) -> MessageBus:
        assert isinstance(bus, SqliteLogBus)
        return SqliteLogBus(bus.path, bus.tenant)

    async def inject_raw(self, bus: MessageBus, topic: str, data: bytes, message_id: str) -> None:
        assert isinstance(bus, SqliteLogBus)
        with sqlite3.connect(bus.path) as conn:
            conn.execute(
                "INSERT INTO messages(topic, key, id, headers, body, ts) VALUES (?,?,?,?,?,?)",
                (topic, "", message_id, "{}", data, time.time()),
            )
