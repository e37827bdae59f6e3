"""Tenant kernel specs: ``workbench kernels install/list`` and a real kernel started from one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.notebook.conftest import TENANT
from workbench.cli import cli
from workbench.errors import ValidationError
from workbench.notebook.kernelspec import kernel_name, kernel_spec

ROOT = Path(__file__).resolve().parents[2]


def _install(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["--json", *args])
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_template_in_kernels_folder_matches_what_install_writes() -> None:
    template = (ROOT / "kernels" / "kernel.json.in").read_text(encoding="utf-8")
    rendered = json.loads(
        template.replace("@PYTHON@", json.dumps(sys.executable)[1:-1]).replace("@TENANT@", "t1")
    )
    assert rendered == kernel_spec("t1")


def test_kernel_names_follow_tenant_ids() -> None:
    assert kernel_name("plant-linz") == "workbench-plant-linz"
    with pytest.raises(ValidationError, match="tenant id"):
        kernel_name("Bad Tenant")


def test_install_writes_the_spec_and_list_finds_it(tmp_path: Path, data_dir: Path) -> None:
    prefix = tmp_path / "jupyter"
    out = _install(
        "--data-dir",
        str(data_dir),
        "kernels",
        "install",
        "--tenant",
        TENANT,
        "--prefix",
        str(prefix),
    )
    spec_dir = prefix / "share" / "jupyter" / "kernels" / f"workbench-{TENANT}"
    assert out == {
        "kernel": f"workbench-{TENANT}",
        "tenant": TENANT,
        "path": str(spec_dir),
        "dataDir": str(data_dir.resolve()),
    }
    spec = json.loads((spec_dir / "kernel.json").read_text(encoding="utf-8"))
    assert spec["display_name"] == f"Workbench · {TENANT}"
    assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"]
    assert "--IPKernelApp.extra_extensions=workbench.notebook" in spec["argv"]
    assert spec["env"] == {"WORKBENCH_TENANT": TENANT, "WORKBENCH_HOME": str(data_dir.resolve())}
    listed = _install("kernels", "list", "--prefix", str(prefix))
    assert {
        "kernel": f"workbench-{TENANT}",
        "tenant": TENANT,
        "displayName": f"Workbench · {TENANT}",
        "path": str(spec_dir),
    } in listed


def test_install_refuses_a_tenant_missing_from_the_data_dir(tmp_path: Path, data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(data_dir),
            "kernels",
            "install",
            "--tenant",
            "ghost",
            "--prefix",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "tenant 'ghost' does not exist" in result.stderr


def test_install_with_api_url_and_conflicting_targets(tmp_path: Path) -> None:
    out = _install(
        "kernels",
        "install",
        "--tenant",
        "remote-one",
        "--prefix",
        str(tmp_path),
        "--api-url",
        "http://127.0.0.1:5001",
    )
    spec = json.loads((Path(out["path"]) / "kernel.json").read_text(encoding="utf-8"))
    assert spec["env"]["WORKBENCH_API_URL"] == "http://127.0.0.1:5001"
    result = CliRunner().invoke(
        cli, ["kernels", "install", "--tenant", "x1", "--user", "--prefix", str(tmp_path)]
    )
    assert result.exit_code == 2


@pytest.mark.slow
def test_installed_kernel_starts_with_wb_bound_to_the_tenant(
    tmp_path: Path, data_dir: Path
) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    prefix = tmp_path / "jupyter"
    _install(
        "--data-dir",
        str(data_dir),
        "kernels",
        "install",
        "--tenant",
        TENANT,
        "--prefix",
        str(prefix),
    )
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    manager = KernelManager(kernel_name=f"workbench-{TENANT}", kernel_spec_manager=specs)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs: list[dict[str, Any]] = []
        reply = client.execute_interactive(
            "type(wb).__name__, wb.id, str(wb.ck.model().types['System/Entity'].id)",
            timeout=60,
            output_hook=outputs.append,
        )
        assert reply["content"]["status"] == "ok"
        results = [
            m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"
        ]
        assert results == [f"('Tenant', '{TENANT}', 'System/Entity')"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
