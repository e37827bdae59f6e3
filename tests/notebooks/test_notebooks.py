"""The tutorial notebooks: committed without outputs, and each runs top to bottom in a tenant
kernel (installed with ``workbench kernels install``) on a fresh data directory and tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("nbclient", reason="the notebook extra is not installed")

import nbformat
from nbclient import NotebookClient

import workbench
from workbench.cli import cli

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
TENANT = "tutorial"
REMOTE_TOKEN = "notebook-remote-token"


def test_the_tutorials_are_there() -> None:
    assert [p.name for p in TUTORIALS] == [
        "01-construction-kit.ipynb",
        "02-runtime-entities.ipynb",
        "03-stream-data.ipynb",
        "04-graphql.ipynb",
    ]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    dirty = [
        i
        for i, cell in enumerate(book.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"
    # no kernelspec: Jupyter opens it with the server's default kernel, the tenant's
    assert "kernelspec" not in book.metadata


def _execute(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *install_options: str
) -> Any:
    prefix = tmp_path / "jupyter"
    installed = CliRunner().invoke(
        cli,
        ["kernels", "install", "--tenant", TENANT, "--prefix", str(prefix), *install_options],
    )
    assert installed.exit_code == 0, installed.output
    # Jupyter looks for kernel specs in JUPYTER_PATH too: the notebook's default kernel
    # manager finds the tenant kernel there (and owns, so shuts down, the kernel it starts)
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        kernel_name=f"workbench-{TENANT}",
        timeout=120,
        startup_timeout=60,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return book


def _run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run in a kernel that opens a fresh data directory itself (in-process ``wb``)."""
    data_dir = tmp_path / "wb"
    with workbench.open(data_dir) as opened:
        opened.tenants.create(TENANT)
    return _execute(path, tmp_path, monkeypatch, "--data-dir", str(data_dir))


def _run_remote(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run in a kernel whose ``wb`` reaches a fresh tenant through a real Asset Repository."""
    from workbench.services import StaticTokenAuthenticator, create_app
    from workbench.testing.http import ServiceServer

    with workbench.open(tmp_path / "wb") as opened:
        opened.tenants.create(TENANT)
        app = create_app(workbench=opened, auth=StaticTokenAuthenticator(REMOTE_TOKEN))
        with ServiceServer(app) as server:
            monkeypatch.setenv("WORKBENCH_API_TOKEN", REMOTE_TOKEN)
            monkeypatch.delenv("WORKBENCH_HOME", raising=False)
            return _execute(path, tmp_path, monkeypatch, "--api-url", server.url)


def _outputs(book: Any, index: int) -> list[Any]:
    return list(book.cells[index].outputs)


def _data(book: Any, index: int) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for output in _outputs(book, index):
        merged.update(output.get("data", {}))
    return merged


def _cell(book: Any, needle: str) -> int:
    return next(i for i, c in enumerate(book.cells) if c.cell_type == "code" and needle in c.source)


@pytest.mark.slow
def test_01_construction_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = _run(NOTEBOOKS / "01-construction-kit.ipynb", tmp_path, monkeypatch)
    assert TENANT in _data(book, _cell(book, "%wb"))["text/plain"]
    imported = _data(book, _cell(book, "%%ck\nmodelId: Tutorial.Plant-1.0.0"))["text/plain"]
    assert "added types" in imported
    assert "Tutorial.Plant/Pump" in imported
    upgraded = _data(book, _cell(book, "Tutorial.Plant-1.1.0"))["text/plain"]
    assert "Tutorial.Plant-1.0.0 → Tutorial.Plant-1.1.0" in upgraded
    assert "migrated entities  2" in upgraded
    assert "workbench-ck-type" in _data(book, _cell(book, "wb.model.type"))["text/html"]
    refused = _outputs(book, _cell(book, "Tutorial.Plant-1.2.0"))
    assert [o.ename for o in refused if o.output_type == "error"] == ["ModelError"]
    assert "'Tutorial.Plant-1.1.0'" in _data(book, len(book.cells) - 1)["text/plain"]


@pytest.mark.slow
def test_02_runtime_entities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = _run(NOTEBOOKS / "02-runtime-entities.ipynb", tmp_path, monkeypatch)
    page = _data(book, _cell(book, "wb.entities.find(ENERGY_METER, where"))
    assert "<table" in page["text/html"]
    assert "TUT-0002" in page["text/html"]
    children = _data(book, _cell(book, '"children"'))["text/plain"]
    assert children == "['Tutorial Meter 1', 'Tutorial Meter 2']"
    assert _data(book, _cell(book, "changed = "))["text/plain"] == "('Faulty', 2)"


@pytest.mark.slow
def test_03_stream_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = _run(NOTEBOOKS / "03-stream-data.ipynb", tmp_path, monkeypatch)
    assert _data(book, _cell(book, "streams.write(points)"))["text/plain"] == "720"
    for source in ("raw", "hourly"):
        plot = _data(book, next(i for i, c in enumerate(book.cells) if c.source == source))
        assert "application/vnd.holoviews_exec.v0+json" in plot, sorted(plot)
    assert "application/vnd.holoviews_exec.v0+json" in _data(book, _cell(book, "hv.HLine"))
    assert "application/vnd.holoviews_exec.v0+json" in _data(book, _cell(book, "hv.Spikes"))


@pytest.mark.slow
def test_03_stream_data_through_the_asset_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _run_remote(NOTEBOOKS / "03-stream-data.ipynb", tmp_path, monkeypatch)
    assert "(remote)" in _data(book, _cell(book, "%wb"))["text/plain"]
    assert _data(book, _cell(book, "streams.write(points)"))["text/plain"] == "720"
    plot = _data(book, next(i for i, c in enumerate(book.cells) if c.source == "raw"))
    assert "application/vnd.holoviews_exec.v0+json" in plot


@pytest.mark.slow
def test_04_graphql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = _run(NOTEBOOKS / "04-graphql.ipynb", tmp_path, monkeypatch)
    meters = _data(book, _cell(book, "parent { ... on DemoEnergyBuilding"))["text/html"]
    assert "parent.name" in meters
    assert "Tutorial Hall" in meters
    one = _data(book, _cell(book, "%%graphql -v serial"))["text/plain"]
    assert one.splitlines()[1:] == ["0  Tutorial Meter 2  ACTIVE"]
    assert "'write': 30" in _data(book, _cell(book, "%%graphql --vars write_vars"))["text/plain"]
    buckets = _data(book, _cell(book, "buckets[["))["text/plain"]
    assert "voltageMax" in buckets
    assert len(buckets.splitlines()) == 4
