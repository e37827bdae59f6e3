"""RS256 signing keys of the Identity service, with rotation.

Keys live in the system store (namespace ``identity.keys``). The newest key signs; the JWKS
publishes it and the previous one, so tokens signed just before a rotation stay verifiable until
they expire. Older keys are dropped at rotation.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from joserfc.jwk import RSAKey

from workbench.storage.base import EntityStore, MetaWrite, WriteBatch

__all__ = ["KEYS_NAMESPACE", "SigningKeys"]

KEYS_NAMESPACE = "identity.keys"
_PUBLISHED = 2  # the current key and the previous one


class SigningKeys:
    """The signing key ring: ``current()`` signs, ``jwks()`` publishes, ``rotate()`` replaces."""

    def __init__(self, store: EntityStore, *, key_size: int = 2048) -> None:
        self._store = store
        self._key_size = key_size
        self._lock = threading.Lock()
        self._keys: list[tuple[float, RSAKey]] = []
        self._load()

    def _load(self) -> None:
        docs = self._store.list_meta(KEYS_NAMESPACE)
        keys = []
        for kid, doc in docs.items():
            key = RSAKey.import_key(
                doc["pem"], parameters={"kid": kid, "use": "sig", "alg": "RS256"}
            )
            keys.append((float(doc["created"]), key))
        keys.sort(key=lambda item: item[0], reverse=True)
        self._keys = keys

    def _generate(self) -> tuple[float, RSAKey]:
        kid = f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        key = RSAKey.generate_key(
            self._key_size, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
        )
        return time.time(), key

    def rotate(self) -> str:
        """Make a new signing key current; keep the previous one published. Returns its kid."""
        with self._lock:
            created, key = self._generate()
            keep = [(created, key), *self._keys][:_PUBLISHED]
            dropped = [k for _, k in self._keys[_PUBLISHED - 1 :]]
            writes = [
                MetaWrite(
                    KEYS_NAMESPACE,
                    str(key.kid),
                    {"pem": key.as_pem(private=True).decode(), "created": created},
                )
            ]
            writes += [MetaWrite(KEYS_NAMESPACE, str(old.kid), None) for old in dropped]
            self._store.apply(WriteBatch(meta=writes))
            self._keys = keep
            return str(key.kid)

    def ensure(self, max_age_days: float) -> None:
        """Create the first key, or rotate when the current key is older than ``max_age_days``."""
        if not self._keys or time.time() - self._keys[0][0] > max_age_days * 86400:
            self.rotate()

    def current(self) -> RSAKey:
        """The key that signs new tokens."""
        if not self._keys:
            self.rotate()
        return self._keys[0][1]

    def public_keys(self) -> dict[str, RSAKey]:
        """The published keys by kid."""
        return {
            str(key.kid): RSAKey.import_key(key.as_dict(private=False))
            for _, key in self._keys[:_PUBLISHED]
        }

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document (public parts only)."""
        return {"keys": [key.as_dict(private=False) for _, key in self._keys[:_PUBLISHED]]}
