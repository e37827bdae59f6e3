"""The SQLite entity store: the shared contract plus what only SQLite has (file, WAL, threads)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.storage.sqlite import SqliteEntityStore
from workbench.testing.entity_store_contract import (
    EntityStoreContract,
)


class TestSqliteEntityStore(EntityStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteEntityStore]:
        store = SqliteEntityStore.open(f"sqlite://{tmp_path}/tenant/entities.db")
        yield store
        store.drop()
