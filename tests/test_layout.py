"""Guards for the repository layout that the design depends on."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_platform_folder_is_not_a_python_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists(), (
        "platform/__init__.py shadows the standard library module 'platform'; remove it"
    )


def test_import_platform_resolves_to_the_standard_library() -> None:
    code = "import platform, sys; print(platform.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(out).resolve().parent == stdlib


def test_core_imports_no_web_framework() -> None:
    code = (
        "import sys, workbench, workbench.ck, workbench.runtime.service, workbench.query, "
        "workbench.tenancy.registry, workbench.client.local\n"
        "web = ('fastapi', 'strawberry', 'panel', 'starlette')\n"
        "bad = sorted(m for m in web if m in sys.modules)\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"the core imported web frameworks: {out}"


def test_every_top_level_folder_has_a_readme() -> None:
    for folder in ("kernels", "dashboards", "notebooks", "platform", "hub_config"):
        assert (ROOT / folder / "README.md").is_file(), folder


#: a module longer than this mixes concerns (issue 10) unless its docstring says why: ``Size: ...``
MAX_MODULE_LINES = 600


def test_modules_stay_small_or_say_why() -> None:
    too_long = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_MODULE_LINES or path.name.endswith("_contract.py"):
            continue  # the contract suites are one class per port, long by nature
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.startswith("Size:") for line in docstring.splitlines()):
            too_long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not too_long, (
        f"modules over {MAX_MODULE_LINES} lines: split them by concern (each new module named "
        "after what it defines), or give the docstring a line 'Size: <why>': " + ", ".join(too_long)
    )
