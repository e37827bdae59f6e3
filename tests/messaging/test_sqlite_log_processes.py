"""The SQLite log across processes: tails see another process's messages; a member that dies
without acking has its messages handed out again when its lease runs out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

from workbench.messaging.base import OutgoingMessage
from workbench.messaging.sqlite_log import SqliteLogBus
from workbench.testing.message_bus_contract import TIMEOUT, collect

PUBLISHER = """
import asyncio, sys
from workbench.messaging.base import OutgoingMessage
from workbench.messaging.sqlite_log import SqliteLogBus
bus = SqliteLogBus(sys.argv[1], "acme")
sys.stdin.readline()                      # the test subscribed: go
bus.publish("entity-events", {"n": 0}, key="Basic/Asset.INSERT")
asyncio.run(bus.publish_many(
    [OutgoingMessage("entity-events", {"n": n}, key="Basic/Asset.UPDATE") for n in range(1, 100)]))
bus.close()
"""

CRASHING_MEMBER = """
import asyncio, os, sys
from workbench.messaging.sqlite_log import SqliteLogBus
bus = SqliteLogBus(sys.argv[1], "acme", lease_seconds=0.5)
async def main():
    async for delivery in bus.consume("commands", group="controller"):
        print("claimed", delivery.id, flush=True)
        os._exit(3)                       # dies holding the message, never acks
asyncio.run(main())
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate(timeout=TIMEOUT)  # reaps it and closes the pipes


def test_a_subscriber_sees_another_processes_messages_in_order(tmp_path: Path) -> None:
    path = tmp_path / "acme.bus.db"
    bus = SqliteLogBus(path, "acme")
    publisher = _python(PUBLISHER, str(path))

    async def scenario() -> list[int]:
        subscription = bus.subscribe("entity-events", "Basic/Asset.*")
        assert publisher.stdin is not None
        publisher.stdin.write("go\n")
        publisher.stdin.flush()
        got = await collect(aiter(subscription), 100)
        await subscription.close()
        return [body["n"] for body in got]

    try:
        assert asyncio.run(scenario()) == list(range(100))
        assert publisher.wait(TIMEOUT) == 0
    finally:
        _stop(publisher)
        bus.close()


def test_messages_of_a_member_that_died_are_redelivered_after_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "acme.bus.db"
    bus = SqliteLogBus(path, "acme", lease_seconds=0.5, poll_interval=0.05)

    async def scenario() -> tuple[str, int]:
        await bus.ensure_group("commands", "controller")
        message_id = await bus.publish_confirmed("commands", {"execute": "pipeline-1"})
        member = _python(CRASHING_MEMBER, str(path))
        try:
            assert member.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), TIMEOUT)
            assert line.split() == ["claimed", message_id]
            assert await asyncio.wait_for(asyncio.to_thread(member.wait), TIMEOUT) == 3
        finally:
            _stop(member)
        async with bus.consume("commands", group="controller") as consumer:
            (again,) = await collect(aiter(consumer), 1)
            await again.ack()
        return again.id, again.delivery_count

    try:
        message_id, count = asyncio.run(scenario())
        assert message_id
        assert count == 2
        assert asyncio.run(bus.pending("commands", "controller")) == 0
    finally:
        bus.close()


def test_publish_many_is_one_transaction_visible_at_once(tmp_path: Path) -> None:
    bus = SqliteLogBus(tmp_path / "acme.bus.db", "acme")
    other = SqliteLogBus(tmp_path / "acme.bus.db", "acme")
    try:
        asyncio.run(other.ensure_group("stream-points", "writer"))
        batch = [OutgoingMessage("stream-points", {"v": n}, id=f"m{n}") for n in range(500)]
        asyncio.run(bus.publish_many(batch))
        assert asyncio.run(other.pending("stream-points", "writer")) == 500
    finally:
        bus.close()
        other.close()
