"""Persisted GraphQL queries: Automatic Persisted Queries (Apollo's protocol) and an allow-list.

A client may send ``extensions: {persistedQuery: {version: 1, sha256Hash: "<hex>"}}`` instead of
the document (the Apollo APQ protocol). The server answers ``PersistedQueryNotFound`` (code
``PERSISTED_QUERY_NOT_FOUND``, HTTP 200, not cached) when it does not know the hash; the client
then sends the document with the hash, the server checks that the hash is the document's SHA-256,
keeps the document and runs it, and later requests need only the hash. Over GET, ``extensions``
is a JSON query parameter.

Each tenant chooses with its configuration key ``graphql.persistedQueries`` (it cascades to child
tenants like any other key):

- ``automatic`` (the default): any document is accepted; registrations are kept in memory, at most
  :data:`APQ_CACHE_SIZE` per tenant and process (the least recently used go first; a client whose
  hash was dropped registers it again, as the protocol expects);
- ``allowList``: only documents on the tenant's allow-list run, sent in full or by hash; anything
  else is refused with ``PERSISTED_QUERY_NOT_IN_LIST`` (HTTP 400), and no registration is taken.

The allow-list is kept in the tenant's entity store (so every process of the platform sees it) and
managed with :meth:`PersistedQueries.add` / ``remove`` or ``workbench graphql persist``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from workbench.errors import ValidationError
from workbench.storage.base import EntityStore

__all__ = [
    "ALLOW_LIST",
    "APQ_CACHE_SIZE",
    "AUTOMATIC",
    "MODES",
    "PERSISTED_QUERIES_KEY",
    "PersistedQueries",
    "PersistedQueryError",
    "persisted_queries",
    "query_hash",
    "resolve_persisted",
]

#: the tenant configuration key choosing the mode
PERSISTED_QUERIES_KEY = "graphql.persistedQueries"
AUTOMATIC = "automatic"
ALLOW_LIST = "allowList"
MODES = (AUTOMATIC, ALLOW_LIST)
#: APQ registrations kept per tenant and process
APQ_CACHE_SIZE = 2_000
#: how long a process goes on using a tenant's mode before reading the configuration again
MODE_SECONDS = 2.0

_NAMESPACE = "graphql.persistedQueries"
_HASH = re.compile(r"^[0-9a-f]{64}$")
#: Apollo's advice: a not-found answer must not be cached, the next request registers the hash
NO_CACHE = {"Cache-Control": "private, no-cache, must-revalidate"}


class PersistedQueryError(ValidationError):
    """A persisted-query request that cannot run; ``status`` is its HTTP status."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def query_hash(query: str) -> str:
    """The SHA-256 of a document as APQ clients compute it (hex of the UTF-8 bytes)."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


class PersistedQueries:
    """One tenant's persisted documents: the allow-list (in its entity store) and the APQ
    registrations (in this process's memory)."""

    def __init__(self, store: EntityStore, cache_size: int = APQ_CACHE_SIZE) -> None:
        self._store = store
        self._cache_size = cache_size
        self._registered: OrderedDict[str, str] = OrderedDict()
        self._listed: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- the allow-list ---------------------------------------------------------------------------

    def add(self, query: str, name: str | None = None) -> str:
        """Put a document on the allow-list; its hash. Raise ValidationError for an empty one."""
        if not query.strip():
            raise ValidationError("an empty GraphQL document cannot be persisted; give its text")
        digest = query_hash(query)
        document = {"query": query, "name": name, "added": datetime.now(UTC).isoformat()}
        self._store.put_meta(_NAMESPACE, digest, document)
        with self._lock:
            self._listed[digest] = query
        return digest

    def remove(self, digest: str) -> bool:
        """Take a hash off the allow-list; whether it was on it."""
        known = self._store.get_meta(_NAMESPACE, digest) is not None
        self._store.put_meta(_NAMESPACE, digest, None)
        with self._lock:
            self._listed.pop(digest, None)
        return known

    def list(self) -> list[dict[str, Any]]:
        """The allow-list: ``{sha256Hash, name, added, query}`` each, by name then hash."""
        rows = [
            {"sha256Hash": key, "name": None, "added": None, **doc}
            for key, doc in self._store.list_meta(_NAMESPACE).items()
            if doc
        ]
        return sorted(rows, key=lambda r: (r["name"] or "", r["sha256Hash"]))

    def listed(self, digest: str) -> str | None:
        """The allow-listed document of ``digest`` (None when it is not on the list)."""
        with self._lock:
            if digest in self._listed:
                return self._listed[digest]
        document = self._store.get_meta(_NAMESPACE, digest)  # added by another process?
        if not document:
            return None
        with self._lock:
            self._listed[digest] = document["query"]
        return str(document["query"])

    # -- automatic registrations ------------------------------------------------------------------

    def register(self, digest: str, query: str) -> None:
        with self._lock:
            self._registered[digest] = query
            self._registered.move_to_end(digest)
            while len(self._registered) > self._cache_size:
                self._registered.popitem(last=False)

    def lookup(self, digest: str) -> str | None:
        """The document of ``digest``: allow-listed or registered (None when unknown)."""
        with self._lock:
            query = self._registered.get(digest)
            if query is not None:
                self._registered.move_to_end(digest)
                return query
        return self.listed(digest)


_queries: weakref.WeakKeyDictionary[EntityStore, PersistedQueries] = weakref.WeakKeyDictionary()
_modes: dict[str, tuple[float, str]] = {}
_registry_lock = threading.Lock()


def persisted_queries(tenant: Any) -> PersistedQueries:
    """The persisted queries of a tenant (one object per tenant store and process)."""
    store = tenant.entity_store
    with _registry_lock:
        queries = _queries.get(store)
        if queries is None:
            queries = _queries[store] = PersistedQueries(store)
        return queries


def mode_of(tenant: Any) -> str:
    """The tenant's mode (``automatic`` unless its configuration says ``allowList``), read again
    every :data:`MODE_SECONDS`."""
    now = time.monotonic()
    cached = _modes.get(tenant.id)
    if cached is not None and now - cached[0] < MODE_SECONDS:
        return cached[1]
    value = tenant.config.get(PERSISTED_QUERIES_KEY) or AUTOMATIC
    if value not in MODES:
        raise ValidationError(
            f"tenant {tenant.id!r} has {PERSISTED_QUERIES_KEY}={value!r}; use one of: "
            + ", ".join(MODES)
        )
    _modes[tenant.id] = (now, value)
    return str(value)


def forget_mode(tenant_id: str) -> None:
    """Read the tenant's mode again on its next request (after the configuration changed)."""
    _modes.pop(tenant_id, None)


def _persisted_extension(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    extensions = raw.get("extensions")
    if isinstance(extensions, str) and extensions.strip():  # GET: a JSON query parameter
        try:
            extensions = json.loads(extensions)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"'extensions' is not valid JSON: {exc.msg}") from None
    if not extensions:
        return None
    if not isinstance(extensions, Mapping):
        raise ValidationError("'extensions' must be a JSON object")
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, Mapping):
        raise ValidationError(
            '\'extensions.persistedQuery\' must be {"version": 1, "sha256Hash": "<hex>"}'
        )
    return persisted


def _not_in_list(tenant_id: str) -> PersistedQueryError:
    return PersistedQueryError(
        f"tenant {tenant_id!r} runs only persisted queries and this document is not on its "
        "allow-list; ask an administrator to add it (workbench graphql persist)",
        "PERSISTED_QUERY_NOT_IN_LIST",
    )


def resolve_persisted(tenant: Any, raw: Any) -> Any:
    """The request ``raw`` (a JSON body or GET parameters) with its document filled in from the
    tenant's persisted queries, following the tenant's mode; raise :class:`PersistedQueryError`
    (``PersistedQueryNotFound``: the client registers the document next) or ValidationError."""
    if not isinstance(raw, Mapping):
        return raw
    mode = mode_of(tenant)
    persisted = _persisted_extension(raw)
    query = raw.get("query")
    queries = persisted_queries(tenant)
    if persisted is None:
        free_form = mode == ALLOW_LIST and isinstance(query, str) and bool(query.strip())
        if free_form and queries.listed(query_hash(str(query))) is None:
            raise _not_in_list(tenant.id)
        return raw
    if persisted.get("version", 1) != 1:
        raise PersistedQueryError(
            f"persistedQuery version {persisted.get('version')!r} is not supported; send 1",
            "PERSISTED_QUERY_NOT_SUPPORTED",
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH.match(digest.lower()):
        raise ValidationError(
            f"'extensions.persistedQuery.sha256Hash' {digest!r} is not a SHA-256 hash; send the "
            "64 hex digits of the document's SHA-256"
        )
    digest = digest.lower()
    if isinstance(query, str) and query:
        if query_hash(query) != digest:
            raise PersistedQueryError(
                f"provided sha256Hash {digest} does not match the query (its SHA-256 is "
                f"{query_hash(query)}); hash the exact document text as UTF-8",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        if mode == ALLOW_LIST:
            if queries.listed(digest) is None:
                raise _not_in_list(tenant.id)
        else:
            queries.register(digest, query)
        return raw
    found = queries.listed(digest) if mode == ALLOW_LIST else queries.lookup(digest)
    if found is None:
        if mode == ALLOW_LIST:
            raise _not_in_list(tenant.id)
        raise PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", status=200)
    return {**raw, "query": found}
