"""CronExpression as PipelineTriggers write it: 5 fields standard, 6 fields seconds first, `?`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workbench.errors import ValidationError
from workbench.services.communication_controller.config import cron_schedule

START = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("0 * * * * ?", "2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00"),
        ("*/5 * * * *", "2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"),
        ("*/10 * * * * ?", "2026-01-01T00:00:40+00:00", "2026-01-01T00:00:50+00:00"),
        ("0 0 6 ? * MON", "2026-01-05T06:00:00+00:00", "2026-01-12T06:00:00+00:00"),
    ],
)
def test_next_fire_times(expression: str, first: str, second: str) -> None:
    schedule = cron_schedule(expression, START)
    assert schedule.get_next(datetime).isoformat() == first
    assert schedule.get_next(datetime).isoformat() == second


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * * ?", "every minute"])
def test_bad_expressions_say_what_to_write(expression: str) -> None:
    with pytest.raises(ValidationError, match="cron expression"):
        cron_schedule(expression, START)
