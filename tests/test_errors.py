"""workbench.errors: the error a client raises for a server's error code."""

from __future__ import annotations

import pytest

from workbench.errors import (
    Conflict,
    NotFound,
    StoreLocked,
    ValidationError,
    WorkbenchError,
    error_class,
)


@pytest.mark.parametrize("kind", [ValidationError, NotFound, Conflict, StoreLocked])
def test_a_known_code_comes_back_as_its_class(kind: type[WorkbenchError]) -> None:
    assert error_class(kind.code) is kind


@pytest.mark.parametrize("code", [None, "", "SOMETHING_NEW", "INTERNAL"])
def test_other_codes_are_workbench_errors(code: str | None) -> None:
    assert error_class(code) is WorkbenchError
