"""The Jupyter data directory of bot runs: the tenant kernel specs their kernels start from."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["kernel_path"]


def kernel_path(home: Path, tenant: str, python: str | None = None) -> Path:
    """A Jupyter data directory holding the tenant's kernel spec (``workbench-<tenant>``, the
    ``workbench.notebook`` extension loaded) for runs; returns the directory for JUPYTER_PATH."""
    from workbench.notebook.kernelspec import kernel_name, kernel_spec

    root = home / "bots" / "jupyter"
    folder = root / "kernels" / kernel_name(tenant)
    spec = kernel_spec(tenant, python=python or sys.executable)
    spec["env"] = {}  # the run's environment (tenant, URL, token) comes from the runner
    text = json.dumps(spec, indent=1) + "\n"
    target = folder / "kernel.json"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".kernel.{os.getpid()}.json"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return root
