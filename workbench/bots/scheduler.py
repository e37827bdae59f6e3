"""The Bot Service's scheduler: due runs, limits per tenant and per bot, missed runs, DAGs.

:class:`BotScheduler` reads the deployed bots of every tenant (the promotion pointers), keeps
each bot's next fire time in its :class:`~workbench.bots.history.BotState` (so a restart knows
what it missed) and hands runs to an :class:`~workbench.bots.executor.Executor`. Limits: at most
``tenant_concurrency`` runs of one tenant at a time (more wait in a queue) and ``concurrency``
runs of one bot (a due run beyond it is skipped and recorded, or queued, per the bot's
``overlap``). A run that succeeds triggers the bots scheduled ``after`` it once all the bots they
follow have succeeded.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.bots.event_triggers import (
    EntityEventTrigger,
    event_matches,
    event_parameter,
    tenants_with_event_bots,
)
from workbench.bots.executor import Executor, LocalPoolExecutor
from workbench.bots.history import BotState, RunHistory, RunRecord, history_of, new_run_id
from workbench.bots.runs import RunRequest
from workbench.bots.schedules import BotSettings
from workbench.errors import Conflict, NotFound
from workbench.messaging.base import EntityEvent, MessageBus
from workbench.promotion.artifacts import Artifact, ArtifactStore

# Executor and LocalPoolExecutor are re-exported: the scheduler is where callers meet them
__all__ = ["BotScheduler", "DeployedBot", "Executor", "LocalPoolExecutor"]

log = logging.getLogger("workbench.bots.scheduler")


@dataclass
class DeployedBot:
    tenant: str
    name: str
    artifact: Artifact
    settings: BotSettings


def _now() -> float:
    return time.time()


class BotScheduler:
    """See the module docstring. ``start()`` runs the loop in a thread; ``tick()`` is one pass."""

    def __init__(
        self,
        workbench: Any,
        executor: Executor,
        *,
        tenant_concurrency: int = 2,
        tick_s: float = 0.2,
        rescan_s: float = 1.0,
        retention: tuple[float, int] = (0.0, 0),
        bus: MessageBus | None = None,
    ) -> None:
        self.workbench = workbench
        self.executor = executor
        self.tenant_concurrency = tenant_concurrency
        self.tick_s = tick_s
        self.rescan_s = rescan_s
        self.retention = retention
        self._lock = threading.RLock()
        self._bots: dict[tuple[str, str], DeployedBot] = {}
        self._scanned = 0.0
        self._running: dict[tuple[str, str], int] = {}
        self._tenant_running: dict[str, int] = {}
        self._pending: deque[RunRequest] = deque()
        self._futures: dict[str, Future[RunRecord]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = False
        #: the entity events of event-scheduled bots (from ``start()`` on, with a bus)
        self.bus = bus
        self.events: EntityEventTrigger | None = None

    # ---- lookups -----------------------------------------------------------------------------

    def history(self, tenant_id: str) -> RunHistory:
        return history_of(self.workbench, tenant_id)

    def store(self, tenant_id: str) -> ArtifactStore:
        return ArtifactStore(self.workbench.registry.tenant_dir(tenant_id), tenant_id)

    def scan(self) -> dict[tuple[str, str], DeployedBot]:
        """Re-read the deployed bots of every tenant."""
        found: dict[tuple[str, str], DeployedBot] = {}
        for record in self.workbench.registry.list():
            if record.id == "system":
                continue
            store = self.store(record.id)
            for deployment in store.deployments("bot"):
                key = (record.id, deployment.name)
                cached = self._bots.get(key)
                if cached is not None and cached.artifact.version == deployment.version:
                    found[key] = cached
                    continue
                try:
                    artifact = store.get(deployment.name, deployment.version)
                    settings = BotSettings.from_dict(artifact.details.get("bot") or {})
                except Exception as exc:  # one broken artifact must not stop the others
                    log.error("bot %s/%s cannot be scheduled: %s", record.id, deployment.name, exc)
                    continue
                found[key] = DeployedBot(record.id, deployment.name, artifact, settings)
        with self._lock:
            self._bots = found
            self._scanned = _now()
        if self.events is not None:
            self.events.follow(tenants_with_event_bots(found))
        for tenant_id in sorted({t for t, _ in found}):
            try:
                self.executor.prepare(tenant_id)
            except Exception:  # pre-starting kernels is an optimisation: runs still work
                log.exception("the executor could not prepare for tenant %s", tenant_id)
        return found

    def bot(self, tenant_id: str, name: str) -> DeployedBot:
        self.scan()
        found = self._bots.get((tenant_id, name))
        if found is None:
            raise NotFound(
                f"tenant {tenant_id!r} has no deployed bot {name!r}; promote a notebook with "
                "`workbench promote NOTEBOOK --tenant T --kind bot`"
            )
        return found

    def bots(self, tenant_id: str) -> list[DeployedBot]:
        self.scan()
        return [b for (t, _), b in sorted(self._bots.items()) if t == tenant_id]

    # ---- triggering ----------------------------------------------------------------------------

    def trigger(
        self,
        tenant_id: str,
        name: str,
        *,
        trigger: str = "manual",
        parameters: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Queue a run of the bot now; returns its record (``skipped`` when the bot is at its
        concurrency limit and skips overlapping runs)."""
        bot = self.bot(tenant_id, name)
        return self._fire(bot, trigger, parameters or {})

    def _fire(self, bot: DeployedBot, trigger: str, parameters: dict[str, Any]) -> RunRecord:
        history = self.history(bot.tenant)
        record = RunRecord(
            run_id=new_run_id(),
            tenant=bot.tenant,
            bot=bot.name,
            version=bot.artifact.version,
            trigger=trigger,
            parameters=parameters,
        )
        key = (bot.tenant, bot.name)
        with self._lock:
            busy = self._running.get(key, 0) + sum(
                1 for p in self._pending if (p.record.tenant, p.record.bot) == key
            )
            if busy >= bot.settings.concurrency and bot.settings.overlap == "skip":
                record.status = "skipped"
                record.finished_at = record.queued_at
                record.reason = "overlap"
                record.error = (
                    f"bot {bot.name} already has {busy} run(s) going (concurrency "
                    f"{bot.settings.concurrency}, overlap: skip)"
                )
                history.save(record)
                return record
            history.save(record)
            self._pending.append(RunRequest(record, bot.artifact, bot.settings))
        self._dispatch()
        return record

    def _dispatch(self) -> None:
        with self._lock:
            waiting: deque[RunRequest] = deque()
            while self._pending:
                request = self._pending.popleft()
                record = request.record
                key = (record.tenant, record.bot)
                if (
                    self._tenant_running.get(record.tenant, 0) >= self.tenant_concurrency
                    or self._running.get(key, 0) >= request.settings.concurrency
                ):
                    waiting.append(request)
                    continue
                self._running[key] = self._running.get(key, 0) + 1
                self._tenant_running[record.tenant] = self._tenant_running.get(record.tenant, 0) + 1
                future = self.executor.submit(request)
                self._futures[record.run_id] = future
                future.add_done_callback(functools.partial(self._finished, request))
            self._pending = waiting

    def _finished(self, request: RunRequest, future: Future[RunRecord]) -> None:
        record = request.record
        key = (record.tenant, record.bot)
        with self._lock:
            self._running[key] -= 1
            self._tenant_running[record.tenant] -= 1
            self._futures.pop(record.run_id, None)
        try:
            done = future.result()
        except Exception as exc:  # the executor itself failed: record it
            log.exception("bot run %s failed in the executor", record.run_id)
            record.status, record.error, record.reason = "failed", str(exc), "executor"
            record.finished_at = _now()
            self.history(record.tenant).save(record)
            done = record
        if not self._stop.is_set():
            if done.status == "succeeded":
                self._after(done)
            self._dispatch()

    def _after(self, done: RunRecord) -> None:
        """Start the bots that run after ``done.bot`` once everything they follow succeeded."""
        history = self.history(done.tenant)
        for bot in self.bots(done.tenant):
            schedule = bot.settings.schedule
            if schedule.kind != "after" or done.bot not in schedule.after:
                continue
            if not history.state(bot.name).enabled:
                continue
            mine = history.last(bot.name)
            since = mine.queued_at if mine is not None else 0.0
            ready = True
            for upstream in schedule.after:
                # a skipped (overlapping) run says nothing about the upstream's data
                last = next((r for r in history.runs(upstream) if r.status != "skipped"), None)
                if last is None or last.status != "succeeded" or (last.finished_at or 0) < since:
                    ready = False
            if ready:
                self._fire(bot, f"after:{done.bot}", {})

    def on_entity_event(self, tenant_id: str, event: EntityEvent) -> list[RunRecord]:
        """Fire the tenant's enabled event bots that ``event`` matches; their records."""
        with self._lock:
            bots = [b for (t, _), b in sorted(self._bots.items()) if t == tenant_id]
        fired = []
        history = self.history(tenant_id)
        for bot in bots:
            if event_matches(bot.settings.schedule, event) and history.state(bot.name).enabled:
                kind = getattr(event.update_type, "value", event.update_type)
                trigger = f"event:{event.ck_type_id}.{kind}"
                fired.append(self._fire(bot, trigger, {"event": event_parameter(event)}))
        return fired

    def wait(self, tenant_id: str, name: str, run_id: str, timeout: float = 600.0) -> RunRecord:
        """The run's record once it is final (Conflict when ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        history = self.history(tenant_id)
        while True:
            record = history.get(name, run_id)
            if record.final:
                return record
            if time.monotonic() > deadline:
                raise Conflict(f"run {run_id} of bot {name} is still {record.status}")
            time.sleep(0.1)

    # ---- the loop ------------------------------------------------------------------------------

    def set_enabled(self, tenant_id: str, name: str, enabled: bool) -> BotState:
        self.bot(tenant_id, name)
        history = self.history(tenant_id)
        with self._lock:
            state = history.state(name)
            state.enabled = enabled
            if enabled:
                state.next_fire = None  # recomputed from now: no catch-up for a disabled time
            history.save_state(name, state)
        return state

    def tick(self, now: float | None = None) -> None:
        """Fire every due run (once per bot per tick)."""
        now = _now() if now is None else now
        if now - self._scanned >= self.rescan_s:
            self.scan()
        for bot in list(self._bots.values()):
            try:
                self._tick_bot(bot, now)
            except Exception:
                log.exception("scheduling bot %s/%s failed", bot.tenant, bot.name)
        self._dispatch()

    def _tick_bot(self, bot: DeployedBot, now: float) -> None:
        schedule = bot.settings.schedule
        if schedule.kind not in ("cron", "interval", "once"):
            return
        history = self.history(bot.tenant)
        with self._lock:
            state = history.state(bot.name)
            if not state.enabled:
                return
            moment = datetime.fromtimestamp(now, UTC)
            if state.version != bot.artifact.version or state.next_fire is None:
                first = schedule.next_after(moment)
                state.version = bot.artifact.version
                state.next_fire = first.timestamp() if first else None
                if schedule.kind == "once" and state.last_fire is not None:
                    state.next_fire = None  # a one-off that already ran does not run again
                history.save_state(bot.name, state)
                return
            if now < state.next_fire:
                return
            # due; when several fire times passed (the service was down), the bot's policy says
            # whether they are made up for (one run) or skipped
            missed = state.next_fire < now - max(5.0, 10 * self.tick_s)
            following = schedule.next_after(moment)
            state.last_fire = now
            state.next_fire = following.timestamp() if following else None
            history.save_state(bot.name, state)
        if missed and bot.settings.missed == "skip":
            log.info("bot %s/%s: missed run(s) skipped", bot.tenant, bot.name)
            return
        self._fire(bot, "catch-up" if missed else "schedule", {})
        retention_age, retention_runs = self.retention
        if retention_age or retention_runs:
            history.prune(bot.name, max_age_s=retention_age, max_runs=retention_runs)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("the bot scheduler's tick failed; it goes on")

    def start(self) -> None:
        if self.bus is not None:
            self.events = EntityEventTrigger(self.bus, self.on_entity_event)
        self.scan()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bot-scheduler")
        self._thread.start()
        self.started = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.events is not None:
            self.events.close()
        self.executor.shutdown()
