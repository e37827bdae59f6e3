"""The scheduler's decisions (fire times, missed runs, overlap, DAG), with an executor that
finishes runs at once instead of starting kernels; the runs themselves are in
test_bot_service.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import pytest

import workbench
from tests.promotion.conftest import write_notebook
from workbench.bots.history import RunRecord
from workbench.bots.runs import RunRequest
from workbench.bots.scheduler import BotScheduler, Executor
from workbench.bots.schedules import BotSettings, Schedule
from workbench.errors import ValidationError
from workbench.promotion.service import Promotions


class InstantExecutor(Executor):
    """Marks each run succeeded (or what ``outcome`` says) when submitted, or holds it."""

    def __init__(self) -> None:
        self.submitted: list[RunRecord] = []
        self.hold = False
        self.held: list[tuple[RunRequest, Future[RunRecord]]] = []
        self.scheduler: BotScheduler

    def submit(self, request: RunRequest) -> Future[RunRecord]:
        future: Future[RunRecord] = Future()
        self.submitted.append(request.record)
        if self.hold:
            self.held.append((request, future))
        else:
            self.finish(request, future)
        return future

    def finish(self, request: RunRequest, future: Future[RunRecord]) -> None:
        record = request.record
        record.status, record.started_at, record.finished_at = "succeeded", time.time(), time.time()
        self.scheduler.history(record.tenant).save(record)  # as BotRunner does
        future.set_result(record)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[workbench.Workbench, BotScheduler, InstantExecutor]]:
    with workbench.open(tmp_path / "wb") as wb:
        wb.tenants.create("acme")
        executor = InstantExecutor()
        executor.scheduler = BotScheduler(wb, executor, rescan_s=0)
        yield wb, executor.scheduler, executor


def deploy(wb: workbench.Workbench, tmp_path: Path, name: str, **options: object) -> None:
    notebook = write_notebook(tmp_path / f"{name}.ipynb", ["x = 1"])
    Promotions(wb).promote("acme", notebook, kind="bot", name=name, author="t", options=options)


def test_cron_schedules_in_their_time_zone() -> None:
    schedule = Schedule("cron", cron="0 6 * * *", timezone="Europe/Vienna").check()
    fire = schedule.next_after(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert fire == datetime(2026, 7, 2, 4, 0, tzinfo=UTC)  # 06:00 CEST
    six = Schedule("cron", cron="*/10 * * * * *").check()
    assert six.next_after(datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC)).second == 10  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="cron expression"):
        Schedule("cron", cron="61 * * * *").check()
    with pytest.raises(ValidationError, match="time zone"):
        Schedule("cron", cron="0 6 * * *", timezone="Mars/Olympus").check()
    settings = BotSettings.from_options({}, {"every": "5m", "timeout": "90s", "retries": 2})
    assert (settings.schedule.kind, settings.schedule.every, settings.timeout) == (
        "interval",
        300,
        90,
    )


def test_interval_runs_fire_and_missed_runs_follow_the_policy(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wb, scheduler, executor = setup
    deploy(wb, tmp_path, "skipper", every="60s", missed="skip")
    deploy(wb, tmp_path, "catcher", every="60s", missed="catch-up")
    now = time.time()
    scheduler.tick(now)  # first sight: fire times computed, nothing runs
    assert executor.submitted == []
    scheduler.tick(now + 61)
    assert sorted(r.bot for r in executor.submitted) == ["catcher", "skipper"]
    assert {r.trigger for r in executor.submitted} == {"schedule"}
    executor.submitted.clear()
    # the service was down for an hour: one catch-up run for "catcher", none for "skipper"
    scheduler.tick(now + 3600)
    assert [(r.bot, r.trigger) for r in executor.submitted] == [("catcher", "catch-up")]
    history = scheduler.history("acme")
    assert history.last("catcher").status == "succeeded"  # type: ignore[union-attr]


def test_overlapping_runs_are_skipped_and_after_bots_follow(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wb, scheduler, executor = setup
    deploy(wb, tmp_path, "extract")
    deploy(wb, tmp_path, "load")
    deploy(wb, tmp_path, "report", after="extract,load")
    executor.hold = True
    first = scheduler.trigger("acme", "extract")
    second = scheduler.trigger("acme", "extract")
    assert first.status == "queued"
    assert second.status == "skipped"
    assert "concurrency 1" in (second.error or "")
    request, future = executor.held.pop()
    executor.hold = False
    executor.finish(request, future)
    assert [r.bot for r in executor.submitted] == ["extract"]  # "load" has not run yet
    scheduler.trigger("acme", "load")
    assert [(r.bot, r.trigger) for r in executor.submitted][-1] == ("report", "after:load")


def test_disabled_bots_do_not_fire(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wb, scheduler, executor = setup
    deploy(wb, tmp_path, "nightly", every="60s")
    now = time.time()
    scheduler.tick(now)
    scheduler.set_enabled("acme", "nightly", False)
    scheduler.tick(now + 120)
    assert executor.submitted == []


def test_event_bots_run_on_matching_entity_events_from_the_bus(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from workbench.messaging.base import EntityEvent, UpdateType, entity_topic
    from workbench.messaging.local import LocalMessageBus

    wb, _, executor = setup
    deploy(
        wb,
        tmp_path,
        "on-site",
        on_event="Demo.Energy/Site:insert,DELETE",
        event_filter={"region": ["north", "south"]},
    )
    bus = LocalMessageBus()
    scheduler = BotScheduler(wb, executor, rescan_s=0, bus=bus)
    executor.scheduler = scheduler
    assert scheduler.bots("acme")[0].settings.schedule.describe() == (
        "on Demo.Energy/Site events (INSERT/DELETE) where {'region': ['north', 'south']}"
    )
    scheduler.start()
    try:
        assert scheduler.events is not None
        assert scheduler.events.following["acme"].wait(30)

        def event(rt_id: str, kind: UpdateType, type_id: str = "Demo.Energy/Site", **attrs: str):  # type: ignore[no-untyped-def]
            return EntityEvent("acme", kind, rt_id, type_id, {"rtId": rt_id, **attrs})

        for message in (
            event("a", UpdateType.INSERT, region="north"),
            event("b", UpdateType.UPDATE, region="north"),  # not a kind it runs on
            event("c", UpdateType.INSERT, region="east"),  # filtered out
            event("d", UpdateType.INSERT, "Demo.Energy/EnergyMeter", region="north"),
            event("e", UpdateType.DELETE, region="south"),
        ):
            bus.publish(entity_topic("acme"), message)
        deadline = time.monotonic() + 30
        while len(executor.submitted) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # events are handled on the trigger's own loop
    finally:
        scheduler.stop()
    fired = [(r.trigger, r.parameters["event"]["rtId"]) for r in executor.submitted]
    assert fired == [("event:Demo.Energy/Site.INSERT", "a"), ("event:Demo.Energy/Site.DELETE", "e")]
    assert executor.submitted[0].parameters["event"]["entity"]["region"] == "north"


def test_event_schedules_are_checked() -> None:
    with pytest.raises(ValidationError, match="update kind"):
        BotSettings.from_options({}, {"on_event": "Demo.Energy/Site:CHANGE"})
    with pytest.raises(ValidationError, match="names the CK type"):
        Schedule("event").check()
