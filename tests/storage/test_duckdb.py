"""The DuckDB stream store: the contract suite, file ownership across processes, URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.errors import StoreLocked, ValidationError
from workbench.storage.backends import open_stream_store
from workbench.storage.base import StreamColumn, StreamQuery
from workbench.storage.duckdb import DuckDBStreamStore, read_owner
from workbench.testing.stream_store_contract import COLUMNS, StreamStoreContract, T, at, points


class TestDuckDBContract(StreamStoreContract):
    @pytest.fixture
    def stream_store(self, tmp_path: Path) -> Iterator[DuckDBStreamStore]:
        store = DuckDBStreamStore.open(f"duckdb:///{tmp_path / 'streams.duckdb'}")
        yield store
        store.close()


class TestDuckDBInMemoryContract(StreamStoreContract):
    @pytest.fixture
    def stream_store(self) -> Iterator[DuckDBStreamStore]:
        store = DuckDBStreamStore.open("duckdb:///:memory:")
        yield store
        store.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.storage.duckdb import DuckDBStreamStore
    store = DuckDBStreamStore.open("duckdb:///" + sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    store.close()
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A second process that owns ``streams.duckdb`` until its stdin is closed."""
    path = tmp_path / "streams.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    assert process.stdout.readline().strip() == "ready"
    yield path, process
    process.stdin.close()
    process.stdout.close()
    process.wait(timeout=30)


def test_second_process_gets_store_locked_naming_the_owner(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, process = holder
    owner = read_owner(path)
    assert owner is not None
    assert owner["pid"] == process.pid
    with pytest.raises(StoreLocked) as caught:
        DuckDBStreamStore.open(f"duckdb:///{path}")
    message = str(caught.value)
    assert f"process {process.pid}" in message
    assert "workbench serve asset-repository" in message
    assert caught.value.code == "STORE_LOCKED"


def test_owner_is_released_on_close_and_file_reopens(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, process = holder
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)
    assert read_owner(path) is None
    store = DuckDBStreamStore.open(f"duckdb:///{path}")
    try:
        assert read_owner(path)["pid"] == os.getpid()  # type: ignore[index]
    finally:
        store.close()
    assert read_owner(path) is None


def test_stale_owner_record_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "streams.duckdb"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = {"pid": int(dead.stdout), "hostname": "here", "command": "old", "started": "then"}
    path.with_name(path.name + ".owner.json").write_text(json.dumps(stale))
    with DuckDBStreamStore.open(f"duckdb:///{path}") as store:
        assert read_owner(path)["pid"] == os.getpid()  # type: ignore[index]
        store.ensure_table(T, COLUMNS)


def test_two_stores_on_one_file_in_one_process_share_it(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'streams.duckdb'}"
    first = DuckDBStreamStore.open(url)
    second = DuckDBStreamStore.open(url)
    try:
        first.ensure_table(T, COLUMNS[:1])
        first.append(T, points([{"rtId": "a" * 24, "timestamp": at(0), "Voltage": 1.0}]))
        second.ensure_table(T, (StreamColumn("Current", "double"),))
        assert [c.name for c in first.table(T).columns] == ["Voltage", "Current"]  # type: ignore[union-attr]
        first.close()
        assert second.read(T, StreamQuery()).table.num_rows == 1
    finally:
        first.close()
        second.close()


def test_data_survives_reopen_and_drop_removes_files(tmp_path: Path) -> None:
    path = tmp_path / "streams.duckdb"
    with open_stream_store(f"duckdb:///{path}") as store:
        store.ensure_table(T, COLUMNS[:1])
        store.append(T, points([{"rtId": "a" * 24, "timestamp": at(0), "Voltage": 1.0}]))
    store = open_stream_store(f"duckdb:///{path}")
    assert store.read(T, StreamQuery()).table.num_rows == 1
    store.drop()
    assert not path.exists()
    assert read_owner(path) is None


@pytest.mark.parametrize("url", ["duckdb://relative/path.duckdb", "duckdb://host/x.duckdb"])
def test_urls_need_an_absolute_path(url: str) -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        DuckDBStreamStore.open(url)
