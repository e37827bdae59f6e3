"""Backends by URL scheme, imported lazily, with an install hint for missing drivers."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from urllib.parse import urlsplit

from workbench.errors import BackendUnavailable, ValidationError

if TYPE_CHECKING:
    from workbench.storage.base import EntityStore, StreamStore

__all__ = [
    "ENTITY_STORES",
    "STREAM_STORES",
    "EntityStoreOptions",
    "StreamStoreOptions",
    "open_entity_store",
    "open_stream_store",
]


class EntityStoreOptions(TypedDict, total=False):
    """Options of :func:`open_entity_store`, by backend (SQLite refuses the others; MongoDB's
    go to its client)."""

    #: sqlite: seconds to wait for another writer (default 30)
    timeout: float
    #: mongodb: :class:`pymongo.MongoClient`'s server selection timeout (default 5,000 ms)
    serverSelectionTimeoutMS: int
    #: mongodb: :class:`pymongo.MongoClient`'s connect timeout (default 5,000 ms)
    connectTimeoutMS: int


class StreamStoreOptions(TypedDict, total=False):
    """Options of :func:`open_stream_store`, by backend (DuckDB takes none)."""

    #: crate: called instead of ``crate.client.connect`` with the URL's keyword arguments (tests)
    connect: Callable[..., Any]


#: scheme -> (module, class, extra that installs its driver)
ENTITY_STORES: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("workbench.storage.sqlite", "SqliteEntityStore", None),
    "mongodb": ("workbench.storage.mongo", "MongoEntityStore", "mongo"),
}
STREAM_STORES: dict[str, tuple[str, str, str | None]] = {
    "duckdb": ("workbench.storage.duckdb", "DuckDBStreamStore", None),
    "crate": ("workbench.storage.crate", "CrateStreamStore", "crate"),
}


def _load(registry: dict[str, tuple[str, str, str | None]], url: str, what: str) -> Any:
    scheme = urlsplit(url).scheme
    if scheme not in registry:
        raise ValidationError(
            f"{what} URL {url!r} has an unknown scheme {scheme!r}; "
            f"use one of: {', '.join(s + '://' for s in sorted(registry))}"
        )
    module_name, class_name, extra = registry[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'mesh-workbench[{extra}]'" if extra else "reinstall mesh-workbench"
        raise BackendUnavailable(
            f"the {scheme}:// {what} needs a driver that is not installed ({exc.name}); "
            f"install it with: {hint}"
        ) from exc
    return getattr(module, class_name)


def open_entity_store(url: str, **options: Unpack[EntityStoreOptions]) -> EntityStore:
    """Open the entity store at ``url`` (``sqlite:///path.db``, ``mongodb://host/db``)."""
    cls = _load(ENTITY_STORES, url, "entity store")
    store: EntityStore = cls.open(url, **options)
    return store


def open_stream_store(url: str, **options: Unpack[StreamStoreOptions]) -> StreamStore:
    """Open the stream store at ``url`` (``duckdb:///path.duckdb``, ``crate://host:4200/schema``)."""
    cls = _load(STREAM_STORES, url, "stream store")
    store: StreamStore = cls.open(url, **options)
    return store
