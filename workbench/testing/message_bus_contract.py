"""The contract every :class:`~workbench.messaging.base.MessageBus` adapter passes unchanged.

Subclass :class:`MessageBusContract` in the adapter's test module and provide a ``bus`` fixture
yielding a bus for a tenant of its own (closing it afterwards); override :meth:`reopen` (a second
bus object on the same backend, as another process would open it) and set the ``supports_*``
flags the adapter has::

    class TestSqliteLogBus(MessageBusContract):
        supports_durability = True

        @pytest.fixture
        def bus(self, tmp_path): ...

Topics and groups are unique per test, so adapters on a shared server need no cleanup between
tests. Every wait is bounded (:data:`TIMEOUT`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.messaging.base import (
    ENTITY_EVENTS,
    Delivery,
    EntityEvent,
    MessageBus,
    OutgoingMessage,
    UpdateType,
    entity_event_key,
)

__all__ = ["TIMEOUT", "MessageBusContract", "collect", "unique"]

#: seconds any single wait may take before the test fails
TIMEOUT = 10.0


def unique(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{secrets.token_hex(4)}"


async def collect(iterator: AsyncIterator[Any], count: int) -> list[Any]:
    """The next ``count`` items of ``iterator`` (fails after :data:`TIMEOUT`)."""

    async def run() -> list[Any]:
        out: list[Any] = []
        async for item in iterator:
            out.append(item)
            if len(out) == count:
                break
        return out

    return await asyncio.wait_for(run(), TIMEOUT)


@pytest.mark.anyio
class MessageBusContract:
    """Behaviour shared by every bus adapter (see the module docstring)."""

    #: a second bus object on the same backend sees messages stored by the first
    supports_durability = False
    #: bodies must be JSON-compatible (cross-process adapters); False: any object passes through
    requires_serializable_bodies = True

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def bus(self) -> MessageBus:
        raise NotImplementedError("the adapter's test module provides a 'bus' fixture")

    def reopen(self, bus: MessageBus) -> MessageBus:
        """Another bus object on the same backend and tenant as ``bus``."""
        pytest.skip("this adapter keeps nothing beyond its bus object")

    async def inject_raw(self, bus: MessageBus, topic: str, data: bytes, message_id: str) -> None:
        """Put ``data`` on ``topic`` as a message body, bypassing the bus's encoding (as a
        foreign or broken publisher would)."""
        pytest.skip("this adapter passes objects, not bytes")

    # ---- transient subscriptions ---------------------------------------------------------

    async def test_subscriber_receives_messages_published_after_it_subscribed(
        self, bus: MessageBus
    ) -> None:
        topic = unique("t")
        bus.publish(topic, {"n": 0})
        subscription = bus.subscribe(topic)
        try:
            for n in (1, 2, 3):
                bus.publish(topic, {"n": n})
            assert await collect(aiter(subscription), 3) == [{"n": 1}, {"n": 2}, {"n": 3}]
        finally:
            await subscription.close()

    async def test_every_subscriber_gets_every_message_and_patterns_filter_keys(
        self, bus: MessageBus
    ) -> None:
        topic = unique("t")
        everything = bus.subscribe(topic)
        inserts = bus.subscribe(topic, "#.INSERT")
        one_type = bus.subscribe(topic, "System.Communication/Adapter.*")
        try:
            bus.publish(topic, 1, key="System.Communication/Adapter.INSERT")
            bus.publish(topic, 2, key="Basic/Asset.UPDATE")
            bus.publish(topic, 3, key="Basic/Asset.INSERT")
            bus.publish(topic, 4, key="System.Communication/Adapter.DELETE")
            assert await collect(aiter(everything), 4) == [1, 2, 3, 4]
            assert await collect(aiter(inserts), 2) == [1, 3]
            assert await collect(aiter(one_type), 2) == [1, 4]
        finally:
            for subscription in (everything, inserts, one_type):
                await subscription.close()

    async def test_entity_events_round_trip_with_their_types(self, bus: MessageBus) -> None:
        stamp = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
        event = EntityEvent(
            "acme", UpdateType.UPDATE, "a" * 24, "Basic/Asset", {"name": "x"}, stamp
        )
        subscription = bus.subscribe(ENTITY_EVENTS, "Basic/Asset.*")
        try:
            bus.publish(ENTITY_EVENTS, event, key=entity_event_key("Basic/Asset", "UPDATE"))
            bus.publish(ENTITY_EVENTS, {"at": stamp, "v": [1.5, None, "s"]}, key="Basic/Asset.X")
            got, other = await collect(aiter(subscription), 2)
            assert got == event
            assert isinstance(got.update_type, UpdateType)
            assert other == {"at": stamp, "v": [1.5, None, "s"]}
        finally:
            await subscription.close()

    async def test_publish_from_another_thread_reaches_the_subscriber(
        self, bus: MessageBus
    ) -> None:
        topic = unique("t")
        subscription = bus.subscribe(topic)
        try:
            thread = threading.Thread(target=lambda: [bus.publish(topic, n) for n in range(5)])
            thread.start()
            assert await collect(aiter(subscription), 5) == [0, 1, 2, 3, 4]
            thread.join()
        finally:
            await subscription.close()

    async def test_closing_a_subscription_ends_its_iteration(self, bus: MessageBus) -> None:
        subscription = bus.subscribe(unique("t"))
        task = asyncio.ensure_future(collect(aiter(subscription), 1))
        await asyncio.sleep(0)
        await subscription.close()
        assert await asyncio.wait_for(task, TIMEOUT) == []

    async def test_unserializable_bodies_are_refused_with_the_type(self, bus: MessageBus) -> None:
        if not self.requires_serializable_bodies:
            pytest.skip("in-process bodies pass through unchanged")
        with pytest.raises(ValidationError, match="object"):
            await bus.publish_confirmed(unique("t"), {"x": object()})

    # ---- durable groups ------------------------------------------------------------------

    async def test_a_group_keeps_messages_while_no_member_runs_and_delivers_them_in_order(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.publish_confirmed(topic, "before the group")
        await bus.ensure_group(topic, group)
        await bus.publish_many([OutgoingMessage(topic, n) for n in range(20)])
        assert await bus.pending(topic, group) == 20
        async with bus.consume(topic, group=group) as consumer:
            deliveries = await collect(aiter(consumer), 20)
            assert [d.body for d in deliveries] == list(range(20))
            assert all(d.delivery_count == 1 and not d.redelivered for d in deliveries)
            for d in deliveries:
                await d.ack()
        assert await bus.pending(topic, group) == 0

    async def test_groups_each_get_every_message_and_members_of_one_group_share_them(
        self, bus: MessageBus
    ) -> None:
        topic, left, right = unique("t"), unique("g"), unique("g")
        await bus.ensure_group(topic, left)
        await bus.ensure_group(topic, right)
        await bus.publish_many([OutgoingMessage(topic, n, key="k") for n in range(10)])
        async with bus.consume(topic, group=right) as whole:
            got = await collect(aiter(whole), 10)
            assert sorted(d.body for d in got) == list(range(10))
            for d in got:
                await d.ack()
        first = bus.consume(topic, group=left, prefetch=3)
        second = bus.consume(topic, group=left, prefetch=3)
        try:
            a = await collect(aiter(first), 3)  # holds its prefetch, so the rest go to second
            b = await collect(aiter(second), 3)
            assert not {d.id for d in a} & {d.id for d in b}
            for d in a + b:
                await d.ack()
            await second.close()
            rest = await collect(aiter(first), 3)
            for d in rest:
                await d.ack()
            rest += await collect(aiter(first), 1)
            await rest[-1].ack()
            assert sorted(d.body for d in a + b + rest) == list(range(10))
        finally:
            await first.close()
            await second.close()
        assert await bus.pending(topic, left) == 0

    async def test_nack_with_requeue_redelivers_and_counts_deliveries(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        message_id = await bus.publish_confirmed(topic, {"v": 1}, headers={"h": "x"})
        async with bus.consume(topic, group=group) as consumer:
            (first,) = await collect(aiter(consumer), 1)
            assert (first.id, first.headers.get("h"), first.delivery_count) == (message_id, "x", 1)
            await first.nack(requeue=True)
            (second,) = await collect(aiter(consumer), 1)
            assert (second.id, second.redelivered, second.delivery_count) == (message_id, True, 2)
            await second.ack()
            with pytest.raises(ValidationError, match="already settled"):
                await second.ack()
        assert await bus.pending(topic, group) == 0

    async def test_a_poison_message_goes_to_the_dead_letter_queue_with_its_reason(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await bus.publish_many(
            [OutgoingMessage(topic, "poison", key="p", id="m-1"), OutgoingMessage(topic, "good")]
        )
        async with bus.consume(topic, group=group) as consumer:
            poison, good = await collect(aiter(consumer), 2)
            await poison.nack(requeue=False, reason="KeyError: 'value' in node 2 (Map@1)")
            await good.ack()
        (dead,) = await bus.dead_letters(topic, group)
        assert (dead.id, dead.body, dead.key, dead.deliveries) == ("m-1", "poison", "p", 1)
        assert dead.reason == "KeyError: 'value' in node 2 (Map@1)"
        assert await bus.pending(topic, group) == 0

    async def test_an_undecodable_body_is_dead_lettered_and_the_group_goes_on(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await self.inject_raw(bus, topic, b"\xff not json", "broken-1")
        await bus.publish_confirmed(topic, "after")
        async with bus.consume(topic, group=group) as consumer:
            (after,) = await collect(aiter(consumer), 1)
            assert after.body == "after"
            await after.ack()
        (dead,) = await bus.dead_letters(topic, group)
        assert dead.id == "broken-1"
        assert dead.reason.startswith("undecodable body")

    async def test_a_message_delivered_too_often_is_dead_lettered(self, bus: MessageBus) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await bus.publish_many([OutgoingMessage(topic, "flaky"), OutgoingMessage(topic, "marker")])
        seen: list[Delivery] = []
        async with bus.consume(topic, group=group, max_deliveries=3) as consumer:
            async for delivery in _bounded(consumer):
                seen.append(delivery)
                if delivery.body == "marker":
                    await delivery.ack()
                else:
                    await delivery.nack(requeue=True, reason="timeout")
                flaky = [d for d in seen if d.body == "flaky"]
                if len(flaky) == 3 and any(d.body == "marker" for d in seen):
                    break
        assert [d.delivery_count for d in seen if d.body == "flaky"] == [1, 2, 3]
        (dead,) = await bus.dead_letters(topic, group)
        assert dead.body == "flaky"
        assert dead.deliveries == 3
        assert "timeout" in dead.reason

    async def test_unsettled_messages_of_a_closed_member_are_redelivered(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await bus.publish_many([OutgoingMessage(topic, n) for n in range(3)])
        first = bus.consume(topic, group=group)
        got = await collect(aiter(first), 3)
        await got[0].ack()
        await first.close()
        async with bus.consume(topic, group=group) as second:
            again = await collect(aiter(second), 2)
            assert sorted(d.body for d in again) == [1, 2]
            assert all(d.redelivered and d.delivery_count == 2 for d in again)
            for d in again:
                await d.ack()
        assert await bus.pending(topic, group) == 0

    async def test_an_acked_message_id_is_not_handed_out_again(self, bus: MessageBus) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        async with bus.consume(topic, group=group) as consumer:
            await bus.publish_confirmed(topic, "point", message_id="meter-1@2026-01-01T00:00:00Z")
            (first,) = await collect(aiter(consumer), 1)
            await first.ack()
            await bus.publish_confirmed(topic, "point", message_id="meter-1@2026-01-01T00:00:00Z")
            await bus.publish_confirmed(topic, "marker")
            (marker,) = await collect(aiter(consumer), 1)
            assert marker.body == "marker"
            await marker.ack()

    async def test_a_group_is_bound_to_its_topic_and_pattern(self, bus: MessageBus) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group, "a.*")
        await bus.ensure_group(topic, group, "a.*")
        with pytest.raises(ValidationError, match=group):
            await bus.ensure_group(topic, group, "b.*")
        with pytest.raises(ValidationError, match="not a valid bus name"):
            await bus.ensure_group(topic, "bad name!")

    async def test_groups_receive_only_keys_matching_their_pattern(self, bus: MessageBus) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group, "#.DELETE")
        await bus.publish_many(
            [
                OutgoingMessage(topic, 1, key="Basic/Asset.INSERT"),
                OutgoingMessage(topic, 2, key="Basic/Asset.DELETE"),
                OutgoingMessage(topic, 3, key="System.Communication/Adapter.DELETE"),
            ]
        )
        async with bus.consume(topic, "#.DELETE", group=group) as consumer:
            got = await collect(aiter(consumer), 2)
            assert [d.body for d in got] == [2, 3]
            for d in got:
                await d.ack()
        assert await bus.pending(topic, group) == 0

    async def test_a_large_confirmed_batch_arrives_complete_and_in_order(
        self, bus: MessageBus
    ) -> None:
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await bus.publish_many([OutgoingMessage(topic, {"i": i}) for i in range(2000)])
        bodies: list[Any] = []
        async with bus.consume(topic, group=group, prefetch=500) as consumer:
            async for delivery in _bounded(consumer):
                bodies.append(delivery.body["i"])
                await delivery.ack()
                if len(bodies) == 2000:
                    break
        assert bodies == list(range(2000))
        assert await bus.pending(topic, group) == 0

    # ---- durability ----------------------------------------------------------------------

    async def test_messages_outlive_the_bus_object_that_stored_them(self, bus: MessageBus) -> None:
        if not self.supports_durability:
            pytest.skip("this adapter keeps nothing beyond its bus object")
        topic, group = unique("t"), unique("g")
        await bus.ensure_group(topic, group)
        await bus.publish_many([OutgoingMessage(topic, n, id=f"id-{n}") for n in range(3)])
        async with bus.consume(topic, group=group) as consumer:
            (first,) = await collect(aiter(consumer), 1)
            await first.ack()
        await bus.aclose()
        other = self.reopen(bus)
        try:
            assert await other.pending(topic, group) == 2
            async with other.consume(topic, group=group) as consumer:
                got = await collect(aiter(consumer), 2)
                assert [d.id for d in got] == ["id-1", "id-2"]
                for d in got:
                    await d.ack()
        finally:
            await other.aclose()


async def _bounded(consumer: Any) -> AsyncIterator[Delivery]:
    """``consumer``'s deliveries, failing the test after :data:`TIMEOUT` without one."""
    iterator = aiter(consumer)
    while True:
        yield await asyncio.wait_for(anext(iterator), TIMEOUT)
