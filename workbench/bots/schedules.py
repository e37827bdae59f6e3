"""A bot's settings and schedule: when it runs and how (timeout, retries, limits, alerts).

Settings come from the notebook's metadata (``metadata.workbench.bot``) with the promotion's
options on top (``workbench promote ... --cron "0 6 * * *" --timezone Europe/Vienna``).
Schedule kinds: ``cron`` (5 or 6 fields; 6 fields have seconds first), ``interval`` (seconds),
``once`` (an ISO time), ``event`` (entity events of a CK type), ``after`` (other bots, run when
all of them succeeded) and ``manual``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workbench.errors import ValidationError

__all__ = ["BotSettings", "Schedule", "parse_duration", "parse_event_filter"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"500ms"``."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValidationError(f"duration {text!r} is invalid; write e.g. 30s, 5m, 1h or 500ms")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_event_filter(items: str | Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``event_filter`` of an event schedule from ``--event-filter`` options.

    Each item is ``FIELD=VALUE`` (VALUE read as JSON when it parses, ``level=3`` → 3, else
    as text, ``state=ALARM``) or a JSON object; a field given twice allows either value
    (``state=ALARM --event-filter state=WARN`` → ``{"state": ["ALARM", "WARN"]}``). The
    semantics are those of :func:`workbench.bots.event_triggers.event_matches`."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    if isinstance(items, str):
        items = [items]
    found: dict[str, Any] = {}

    def add(name: str, value: Any) -> None:
        if name in found:
            old = found[name] if isinstance(found[name], list) else [found[name]]
            found[name] = old + (value if isinstance(value, list) else [value])
        else:
            found[name] = value

    for item in items:
        text = str(item).strip()
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError as exc:
                raise ValidationError(
                    f"--event-filter {text!r} is not a JSON object ({exc}); write FIELD=VALUE "
                    'or {"state": ["ALARM", "WARN"]}'
                ) from None
            for name, value in document.items():
                add(str(name), value)
            continue
        name, equals, raw = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ValidationError(
                f"--event-filter {text!r} is not FIELD=VALUE; write e.g. --event-filter "
                "state=ALARM (repeat a field to allow several values)"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        add(name, value)
    return found


@dataclass(frozen=True)
class Schedule:
    """When a bot runs. ``kind``: cron, interval, once, event, after or manual."""

    kind: str = "manual"
    cron: str | None = None
    timezone: str = "UTC"
    every: float | None = None
    at: str | None = None
    after: tuple[str, ...] = ()
    event_type: str | None = None
    event_kinds: tuple[str, ...] = ()
    event_filter: dict[str, Any] = field(default_factory=dict)

    def check(self) -> Schedule:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"time zone {self.timezone!r} is unknown; use an IANA name such as "
                "Europe/Vienna or UTC"
            ) from None
        if self.kind == "cron":
            from croniter import croniter

            fields = (self.cron or "").split()
            if len(fields) not in (5, 6) or not croniter.is_valid(
                self.cron or "", second_at_beginning=len(fields) == 6
            ):
                raise ValidationError(
                    f"cron expression {self.cron!r} is invalid: give 5 fields (minute hour day "
                    "month weekday) or 6 with seconds first, e.g. '0 6 * * *'"
                )
        elif self.kind == "interval":
            if not self.every or self.every < 1:
                raise ValidationError("an interval schedule needs --every of at least 1 s")
        elif self.kind == "once":
            self.once_time()
        elif self.kind == "after":
            if not self.after:
                raise ValidationError("an 'after' schedule names the bots it follows (--after a,b)")
        elif self.kind == "event":
            if not self.event_type:
                raise ValidationError(
                    "an event schedule names the CK type: --on-event TYPE[:INSERT,UPDATE,DELETE]"
                )
            unknown = [k for k in self.event_kinds if k not in ("INSERT", "UPDATE", "DELETE")]
            if unknown:
                raise ValidationError(
                    f"update kind(s) {', '.join(unknown)} of --on-event are unknown; use "
                    "INSERT, UPDATE and DELETE (e.g. --on-event Demo.Energy/Site:INSERT,UPDATE)"
                )
            if not isinstance(self.event_filter, dict):
                raise ValidationError(
                    f"event_filter {self.event_filter!r} is not a mapping of attribute names to "
                    'values, e.g. {"state": "ALARM"} or {"state": ["ALARM", "WARN"]}'
                )
        elif self.kind != "manual":
            raise ValidationError(
                f"schedule kind {self.kind!r} is unknown; use cron, interval, once, event, "
                "after or manual"
            )
        return self

    def once_time(self) -> datetime:
        try:
            moment = datetime.fromisoformat(str(self.at))
        except ValueError:
            raise ValidationError(
                f"--at {self.at!r} is not an ISO time (e.g. 2026-12-24T06:00:00+01:00)"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(self.timezone))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware), None when there is none."""
        if self.kind == "cron":
            from croniter import croniter

            local = moment.astimezone(ZoneInfo(self.timezone))
            fields = (self.cron or "").split()
            it = croniter(self.cron or "", local, second_at_beginning=len(fields) == 6)
            fire: datetime = it.get_next(datetime)
            return fire.astimezone(UTC)
        if self.kind == "interval":
            return moment + timedelta(seconds=float(self.every or 0))
        if self.kind == "once":
            at = self.once_time().astimezone(UTC)
            return at if at > moment else None
        return None

    def describe(self) -> str:
        if self.kind == "cron":
            return f"cron '{self.cron}' ({self.timezone})"
        if self.kind == "interval":
            return f"every {self.every:g} s"
        if self.kind == "once":
            return f"once at {self.at}"
        if self.kind == "after":
            return "after " + ", ".join(self.after)
        if self.kind == "event":
            kinds = "/".join(self.event_kinds) or "any"
            where = f" where {self.event_filter}" if self.event_filter else ""
            return f"on {self.event_type} events ({kinds}){where}"
        return "manual"


@dataclass(frozen=True)
class BotSettings:
    """How a bot runs: its schedule, limits, retries and alerts."""

    schedule: Schedule = field(default_factory=Schedule)
    timeout: float = 600.0
    retries: int = 0
    retry_backoff: float = 5.0
    #: concurrent runs of this bot; ``overlap`` says what a due run does when they are taken
    concurrency: int = 1
    overlap: str = "skip"
    #: after downtime: run once for the missed fire times ("catch-up") or not ("skip")
    missed: str = "skip"
    memory_mb: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    alert_webhooks: tuple[str, ...] = ()
    alert_emails: tuple[str, ...] = ()
    alert_on: tuple[str, ...] = ("failure",)
    #: roles the bot's client holds beyond Development and StreamDataWriter (a restore bot
    #: needs DataModelManagement to import libraries)
    roles: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, notebook: Mapping[str, Any], options: Mapping[str, Any]) -> BotSettings:
        """Settings from notebook metadata ``workbench.bot``, then ``options`` on top."""
        meta = dict(((notebook.get("metadata") or {}).get("workbench") or {}).get("bot") or {})
        merged = {**meta, **{k: v for k, v in options.items() if v not in (None, (), [], "")}}
        return cls.from_dict(merged)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BotSettings:
        schedule_data = data.get("schedule")
        if isinstance(schedule_data, Mapping):
            fields: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v
                for k, v in schedule_data.items()
                if k in Schedule.__dataclass_fields__
            }
            schedule = Schedule(**fields)
        else:
            schedule = _schedule_from_flat(data)
        settings = cls(
            schedule=schedule.check(),
            timeout=parse_duration(data.get("timeout", 600)),
            retries=int(data.get("retries", 0)),
            retry_backoff=parse_duration(data.get("retry_backoff", 5)),
            concurrency=int(data.get("concurrency", 1)),
            overlap=str(data.get("overlap", "skip")),
            missed=str(data.get("missed", "skip")),
            memory_mb=int(data["memory_mb"]) if data.get("memory_mb") else None,
            parameters=dict(data.get("parameters") or {}),
            alert_webhooks=tuple(data.get("alert_webhooks") or ()),
            alert_emails=tuple(data.get("alert_emails") or ()),
            alert_on=tuple(data.get("alert_on") or ("failure",)),
            roles=tuple(data.get("roles") or ()),
        )
        if settings.overlap not in ("skip", "queue"):
            raise ValidationError(f"overlap {settings.overlap!r}: use skip or queue")
        if settings.missed not in ("skip", "catch-up"):
            raise ValidationError(f"missed-run policy {settings.missed!r}: use skip or catch-up")
        from workbench.identity.model import ROLES

        unknown = [r for r in settings.roles if r not in ROLES]
        if unknown:
            raise ValidationError(f"unknown role(s) {', '.join(unknown)}; use {', '.join(ROLES)}")
        if settings.concurrency < 1 or settings.retries < 0:
            raise ValidationError("concurrency must be at least 1 and retries at least 0")
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _schedule_from_flat(data: Mapping[str, Any]) -> Schedule:
    timezone = str(data.get("timezone") or "UTC")
    if data.get("event_filter") and not data.get("on_event"):
        raise ValidationError(
            "--event-filter filters the entity events of an event schedule: add --on-event "
            "TYPE[:INSERT,UPDATE,DELETE] (e.g. --on-event Demo.Energy/Site:UPDATE)"
        )
    if data.get("cron"):
        return Schedule("cron", cron=str(data["cron"]), timezone=timezone)
    if data.get("every"):
        return Schedule("interval", every=parse_duration(data["every"]), timezone=timezone)
    if data.get("at"):
        return Schedule("once", at=str(data["at"]), timezone=timezone)
    if data.get("after"):
        after = data["after"]
        names = after.split(",") if isinstance(after, str) else list(after)
        return Schedule("after", after=tuple(n.strip() for n in names if n.strip()))
    if data.get("on_event"):
        type_id, _, kinds = str(data["on_event"]).partition(":")
        return Schedule(
            "event",
            event_type=type_id,
            event_kinds=tuple(k.strip().upper() for k in kinds.split(",") if k.strip()),
            event_filter=parse_event_filter(data.get("event_filter") or None),
        )
    return Schedule("manual", timezone=timezone)
