"""Run history of a tenant's bots, in the tenant's file area.

::

    <home>/tenants/<tenant>/bots/
        state/<bot>.json            enabled, last fire time, next fire time
        runs/<bot>/<run id>/        run.json (the record), notebook.ipynb, output.ipynb,
                                    output.html, run.log, outputs.jsonl, artifacts/

Run ids sort by time (``20261203T170102123-ab12cd``). Records are rewritten with
``os.replace`` (readers never see half a record).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import NotFound

__all__ = ["BotState", "RunHistory", "RunRecord", "history_of", "new_run_id"]

FINAL_STATES = frozenset({"succeeded", "failed", "timed-out", "skipped"})


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{stamp}-{secrets.token_hex(3)}"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class RunRecord:
    """One run of a bot (all attempts of it)."""

    run_id: str
    tenant: str
    bot: str
    version: int
    trigger: str
    status: str = "queued"
    parameters: dict[str, Any] = field(default_factory=dict)
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    error: str | None = None
    reason: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["queuedAt"] = _iso(self.queued_at)
        data["startedAt"] = _iso(self.started_at)
        data["finishedAt"] = _iso(self.finished_at)
        data["seconds"] = (
            round(self.finished_at - self.started_at, 3)
            if self.finished_at is not None and self.started_at is not None
            else None
        )
        return data


@dataclass
class BotState:
    """What the scheduler remembers of a bot between restarts."""

    enabled: bool = True
    last_fire: float | None = None
    next_fire: float | None = None
    version: int | None = None


class RunHistory:
    """Runs and scheduler state of one tenant's bots."""

    def __init__(self, tenant_dir: Path, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.root = tenant_dir / "bots"

    def run_dir(self, bot: str, run_id: str) -> Path:
        return self.root / "runs" / bot / run_id

    def save(self, record: RunRecord) -> None:
        folder = self.run_dir(record.bot, record.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".run.{os.getpid()}.{secrets.token_hex(2)}.tmp"
        tmp.write_text(json.dumps(asdict(record), default=str), encoding="utf-8")
        os.replace(tmp, folder / "run.json")

    def get(self, bot: str, run_id: str) -> RunRecord:
        path = self.run_dir(bot, run_id) / "run.json"
        try:
            return RunRecord(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise NotFound(
                f"bot {bot!r} of tenant {self.tenant_id!r} has no run {run_id!r}; list them "
                "with `workbench bots runs`"
            ) from None

    def runs(self, bot: str, limit: int = 50) -> list[RunRecord]:
        """The bot's runs, newest first."""
        folder = self.root / "runs" / bot
        if not folder.is_dir():
            return []
        found: list[RunRecord] = []
        for run_dir in sorted(folder.iterdir(), reverse=True):
            if len(found) >= limit:
                break
            path = run_dir / "run.json"
            if path.is_file():
                found.append(RunRecord(**json.loads(path.read_text(encoding="utf-8"))))
        return found

    def last(self, bot: str) -> RunRecord | None:
        runs = self.runs(bot, limit=1)
        return runs[0] if runs else None

    def find_run(self, run_id: str) -> RunRecord:
        folder = self.root / "runs"
        if folder.is_dir():
            for bot_dir in folder.iterdir():
                if (bot_dir / run_id / "run.json").is_file():
                    return self.get(bot_dir.name, run_id)
        raise NotFound(f"tenant {self.tenant_id!r} has no bot run {run_id!r}")

    def state(self, bot: str) -> BotState:
        path = self.root / "state" / f"{bot}.json"
        try:
            return BotState(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return BotState()

    def save_state(self, bot: str, state: BotState) -> None:
        folder = self.root / "state"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{bot}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
        os.replace(tmp, folder / f"{bot}.json")

    def prune(self, bot: str, *, max_age_s: float, max_runs: int) -> int:
        """Remove finished runs beyond the retention limits; returns how many."""
        folder = self.root / "runs" / bot
        if not folder.is_dir():
            return 0
        removed = 0
        now = time.time()
        for index, run_dir in enumerate(sorted(folder.iterdir(), reverse=True)):
            path = run_dir / "run.json"
            if not path.is_file():
                continue
            record = RunRecord(**json.loads(path.read_text(encoding="utf-8")))
            too_many = max_runs > 0 and index >= max_runs
            too_old = max_age_s > 0 and now - record.queued_at > max_age_s
            if record.final and (too_many or too_old):
                shutil.rmtree(run_dir, ignore_errors=True)
                removed += 1
        return removed


def history_of(workbench: Any, tenant_id: str) -> RunHistory:
    """The run history of ``tenant_id`` in ``workbench``'s data directory."""
    return RunHistory(workbench.registry.tenant_dir(tenant_id), tenant_id)
