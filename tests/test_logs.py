"""``configure_logging`` takes its format from the settings (``WORKBENCH_LOG_FORMAT``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from workbench.logs import JsonFormatter, configure_logging


@pytest.fixture
def workbench_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("workbench")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.parametrize(("value", "json_lines"), [("json", True), ("text", False)])
def test_the_log_format_comes_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, workbench_logger: logging.Logger, value: str, json_lines: bool
) -> None:
    monkeypatch.setenv("WORKBENCH_LOG_FORMAT", value)
    configure_logging()
    (handler,) = workbench_logger.handlers
    assert isinstance(handler.formatter, JsonFormatter) is json_lines


def test_an_explicit_format_wins(
    monkeypatch: pytest.MonkeyPatch, workbench_logger: logging.Logger
) -> None:
    monkeypatch.setenv("WORKBENCH_LOG_FORMAT", "text")
    configure_logging(fmt="json")
    (handler,) = workbench_logger.handlers
    assert isinstance(handler.formatter, JsonFormatter)
