"""Shared hooks of the security suite.

Every test of an attack carries the ``attack`` marker. At the end of the run the terminal
summary prints ``security attacks: tried N, refused M``: N counts the attack tests that ran
(passed or failed), M those that passed, i.e. the attack was refused exactly as asserted (a 5xx
is never a refusal: the tests assert the exact status, error code and that the server is still
healthy afterwards)."""

from __future__ import annotations

from typing import Any

import pytest

_outcomes: dict[str, bool] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("attack") is None:
        return
    if report.when == "call":
        _outcomes[item.nodeid] = report.passed
    elif report.when == "setup" and report.failed:
        _outcomes[item.nodeid] = False


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    tried = len(_outcomes)
    refused = sum(1 for passed in _outcomes.values() if passed)
    terminalreporter.write_line(f"security attacks: tried {tried}, refused {refused}")
