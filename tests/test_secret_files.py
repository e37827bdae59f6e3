from __future__ import annotations

import stat
from pathlib import Path

import pytest

from workbench.secret_files import read_or_create_secret, read_secret, write_secret


def test_secret_is_created_once_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "demo-password"
    first = read_or_create_secret(path)
    assert read_or_create_secret(path, lambda: "other") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    write_secret(path, "rotated")
    assert read_secret(path) == "rotated"
    with pytest.raises(FileExistsError):
        write_secret(path, "again", replace=False)
    assert read_secret(tmp_path / "missing") is None
