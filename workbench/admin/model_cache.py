"""The tenants' resolved CK models, shared by the Admin Panel's sessions.

Fetching and resolving a tenant's model costs a quarter of a Data page's build; the model is
the same for every user of the tenant, so the panel keeps one per tenant and model stamp (the
Asset Repository's ``/ck/stamp``, which changes on every library import). Each use still asks
the service for the stamp with the user's token, so the service decides who may read it, and a
model changed by any process is fetched again on the next use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from workbench.ck.model import CkModel

__all__ = ["ModelCache"]


class ModelCache:
    """Resolved models by key (API URL, tenant) and stamp; one fetch per key at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[Hashable, tuple[tuple[int, ...], CkModel]] = {}
        self._fetching: dict[Hashable, threading.Lock] = {}
        #: how many models were fetched (misses), for tests and metrics
        self.fetches = 0

    def _cached(self, key: Hashable, stamp: tuple[int, ...]) -> CkModel | None:
        with self._lock:
            entry = self._models.get(key)
        return entry[1] if entry is not None and entry[0] == stamp else None

    def get(self, key: Hashable, stamp: tuple[int, ...], fetch: Callable[[], CkModel]) -> CkModel:
        """The model of ``key`` at ``stamp``: the cached one, else ``fetch()`` (sessions asking
        for the same key meanwhile wait for that fetch instead of fetching it again)."""
        model = self._cached(key, stamp)
        if model is not None:
            return model
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            model = self._cached(key, stamp)
            if model is not None:
                return model
            model = fetch()
            with self._lock:
                self._models[key] = (stamp, model)
                self.fetches += 1
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
