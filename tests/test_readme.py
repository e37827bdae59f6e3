"""The README's Python example runs as written (against a temporary data directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no Python example under '### Python'"
    return match.group(1)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _python_example()
    assert 'workbench.open("/tmp/wb")' in code
    monkeypatch.chdir(ROOT)  # the example names the library by its path in the checkout
    code = code.replace('"/tmp/wb"', repr(str(tmp_path / "wb")))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    page = namespace["page"]
    assert [e["serialNumber"] for e in page] == ["EM-1"]  # type: ignore[attr-defined]
