"""``workbench up``'s demo logins: the bootstrap admin takes the ``admin_password`` setting
(``WORKBENCH_ADMIN_PASSWORD``), else a generated password shown once."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.client.local import open_workbench
from workbench.demo.logins import prepare_demo_access
from workbench.identity.directory import Directory

REDIRECT = "http://127.0.0.1:5001/playground/callback"


def test_the_admin_gets_the_configured_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_ADMIN_PASSWORD", "configured-Pa55word")
    with open_workbench(tmp_path) as wb:
        access = prepare_demo_access(wb, playground_redirect=REDIRECT, demo_tenant=None)
        directory = Directory.for_workbench(wb)
        assert access.admin_password is None  # nothing generated, nothing to show
        assert directory.authenticate_password("system", "admin", "configured-Pa55word")


def test_without_the_setting_a_password_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_ADMIN_PASSWORD", raising=False)
    with open_workbench(tmp_path) as wb:
        first = prepare_demo_access(wb, playground_redirect=REDIRECT, demo_tenant=None)
        again = prepare_demo_access(wb, playground_redirect=REDIRECT, demo_tenant=None)
        assert first.admin_password
        assert again.admin_password is None  # shown once: the admin exists now
        directory = Directory.for_workbench(wb)
        assert directory.authenticate_password("system", "admin", first.admin_password)
