"""Jupyter kernel specs for tenants: "Workbench · <tenant>" kernels with the extension loaded.

A tenant kernel is IPython started with the ``workbench.notebook`` extension and
``WORKBENCH_TENANT`` (plus ``WORKBENCH_HOME`` or ``WORKBENCH_API_URL`` when given) in its
environment, so ``wb`` is bound to the tenant before the first cell runs. ``kernels/kernel.json.in``
in the source tree shows the same layout with placeholders.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.tenancy.ids import validate_tenant_id

__all__ = [
    "EXTENSION",
    "KERNEL_NAME_PREFIX",
    "InstalledKernel",
    "install_kernel_spec",
    "installed_kernel_specs",
    "kernel_name",
    "kernel_spec",
]

EXTENSION = "workbench.notebook"
KERNEL_NAME_PREFIX = "workbench-"


def kernel_name(tenant: str) -> str:
    """The kernel spec's directory name: ``workbench-<tenant>``."""
    return KERNEL_NAME_PREFIX + validate_tenant_id(tenant)


def kernel_spec(
    tenant: str,
    *,
    python: str | None = None,
    home: Path | None = None,
    api_url: str | None = None,
) -> dict[str, Any]:
    """The ``kernel.json`` content of the tenant's kernel (``python`` defaults to this one)."""
    validate_tenant_id(tenant)
    env = {"WORKBENCH_TENANT": tenant}
    if home is not None:
        env["WORKBENCH_HOME"] = str(home)
    if api_url is not None:
        env["WORKBENCH_API_URL"] = api_url
    return {
        "argv": [
            python or sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            f"--IPKernelApp.extra_extensions={EXTENSION}",
        ],
        "display_name": f"Workbench · {tenant}",
        "language": "python",
        "env": env,
        "interrupt_mode": "signal",
        "metadata": {"debugger": True, "workbench": {"tenant": tenant}},
    }


def install_kernel_spec(
    tenant: str,
    *,
    user: bool = False,
    prefix: Path | None = None,
    home: Path | None = None,
    api_url: str | None = None,
    python: str | None = None,
) -> Path:
    """Write the tenant's kernel spec and return its directory.

    Into ``prefix/share/jupyter/kernels`` with ``prefix``, the user's Jupyter data directory with
    ``user``, else this Python environment's (``sys.prefix``). An existing spec is replaced.
    ``python`` is the kernel's interpreter (default: this one).
    """
    from jupyter_client.kernelspec import KernelSpecManager

    spec = kernel_spec(tenant, python=python, home=home, api_url=api_url)
    with tempfile.TemporaryDirectory() as staging:
        (Path(staging) / "kernel.json").write_text(
            json.dumps(spec, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        target = KernelSpecManager().install_kernel_spec(
            staging,
            kernel_name(tenant),
            user=user,
            prefix=None if user else str(prefix if prefix is not None else sys.prefix),
        )
    return Path(target)


@dataclass(frozen=True)
class InstalledKernel:
    name: str
    tenant: str
    display_name: str
    resource_dir: str


def installed_kernel_specs(prefix: Path | None = None) -> list[InstalledKernel]:
    """The tenant kernel specs Jupyter finds (and those under ``prefix``), sorted by name."""
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    if prefix is not None:
        manager.kernel_dirs = [str(prefix / "share" / "jupyter" / "kernels"), *manager.kernel_dirs]
    found = []
    for name, entry in manager.get_all_specs().items():
        spec = entry.get("spec", {})
        tenant = (spec.get("metadata") or {}).get("workbench", {}).get("tenant")
        if tenant:
            found.append(
                InstalledKernel(
                    name, str(tenant), spec.get("display_name", name), entry["resource_dir"]
                )
            )
    return sorted(found, key=lambda k: k.name)
