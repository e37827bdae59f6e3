"""Secret attributes of runtime entities: which attributes are secret, and their encryption.

A secret (the password of an ``MqttBroker``, the ``clientSecret`` of a ``ServiceAccount``) is kept
encrypted (Fernet: AES-128-CBC with HMAC-SHA256) in a meta document of the tenant's entity store
(namespace :data:`SECRETS_NAMESPACE`, one document per entity), written in the same atomic batch
as the entity. The entity itself holds only :data:`MASK`, so every read path (REST, GraphQL, CLI,
exports, SQL, entity events) shows ``***`` and never the value; writing ``***`` back keeps the
stored secret, writing anything else replaces it, ``None`` removes it. Only
:meth:`workbench.runtime.service.EntityService.reveal_secrets` decrypts (the Communication
Controller, for the configuration it pushes to the adapter that uses the entity).

The key is one per platform: ``<data>/secrets/entity-secrets.key`` (mode 0600), created on the
first write of a secret. The file may hold several keys, one a line: the first encrypts, all
decrypt (:func:`rotate_key` re-encrypts every stored secret with a new first key).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.ck.model import CkModel, CkType, TypeAttribute, ValueType
from workbench.errors import SecretKeyError
from workbench.secret_files import read_secret, write_secret
from workbench.storage.base import EntityStore, MetaWrite, WriteBatch

__all__ = [
    "KEY_FILE_NAME",
    "MASK",
    "SECRETS_NAMESPACE",
    "SecretCipher",
    "is_secret_attribute",
    "rotate_key",
    "secret_attribute_names",
]

#: what every API shows in place of a secret value (and what a write leaves unchanged)
MASK = "***"
#: meta namespace of the encrypted values: key = rtId, document = {attribute name: token}
SECRETS_NAMESPACE = "entity-secrets"
KEY_FILE_NAME = "entity-secrets.key"
#: base type of the configuration entities pipelines use; its subtypes get the naming convention
CONFIGURATION_BASE = "System.Communication/ConfigurationEntity"
#: attribute names (lower case) that are secret by convention on configuration entities
_SECRET_SUFFIXES = (
    "password",
    "passphrase",
    "secret",
    "apikey",
    "token",
    "privatekey",
    "accesskey",
)
_FLAG_KEYS = frozenset({"secret", "issecret", "sensitive", "issensitive"})
_FALSE = frozenset({"false", "no", "0", "off"})


def is_secret_attribute(model: CkModel, ck_type: CkType, attribute: TypeAttribute) -> bool:
    """True when ``attribute`` of ``ck_type`` holds a secret (String attributes only).

    Accepted markers, first match wins: the attribute's ``isSecret: true`` in its library; a
    ``metaData`` entry ``secret`` / ``sensitive`` (``isSecret``, ``isSensitive``; any value but
    ``false``/``no``/``0``; ``false`` opts out of the convention); by convention a name ending in
    password, passphrase, secret, apiKey, token, privateKey or accessKey on a subtype of
    ``System.Communication/ConfigurationEntity``."""
    if attribute.value_type is not ValueType.STRING:
        return False
    declared = attribute.attribute
    if declared.is_secret:
        return True
    for key, value in declared.metadata.items():
        if key.lower() in _FLAG_KEYS:
            return value.strip().lower() not in _FALSE
    if CONFIGURATION_BASE not in model.types or not model.is_a(ck_type.id, CONFIGURATION_BASE):
        return False
    return attribute.name.lower().endswith(_SECRET_SUFFIXES)


def secret_attribute_names(model: CkModel, ck_type: CkType) -> frozenset[str]:
    """The stored names (``Password``) of the secret attributes of ``ck_type``."""
    return frozenset(
        a.name for a in ck_type.attributes.values() if is_secret_attribute(model, ck_type, a)
    )


class SecretCipher:
    """Encrypts and decrypts secret values with the platform key in ``key_file``.

    The file is created (owner-only) on the first :meth:`encrypt`; :meth:`decrypt` never creates
    it: a missing or different key is a :class:`SecretKeyError` naming the file and the fix."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._keys: list[str] | None = None

    def _load(self, *, create: bool) -> list[str]:
        if self._keys is None:
            text = read_secret(self.key_file)
            if text is None and create:
                from cryptography.fernet import Fernet

                # another process may create it first: then use theirs
                with contextlib.suppress(FileExistsError):
                    write_secret(self.key_file, Fernet.generate_key().decode(), replace=False)
                text = read_secret(self.key_file)
            if text is None:
                return []
            self._keys = [line.strip() for line in text.splitlines() if line.strip()]
        return self._keys

    def _fernet(self, *, create: bool) -> Any:
        from cryptography.fernet import Fernet, MultiFernet

        keys = self._load(create=create)
        if not keys:
            raise SecretKeyError(
                f"the secret key file {self.key_file} is missing, so stored secrets cannot be "
                "decrypted; restore it from your backup of the data directory (or set the "
                "secrets again: write the attribute with its value)"
            )
        try:
            return MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise SecretKeyError(
                f"the secret key file {self.key_file} does not hold Fernet keys ({exc}); restore "
                "it from your backup of the data directory"
            ) from exc

    def encrypt(self, value: Any) -> str:
        """The token stored for ``value`` (any JSON value; strings in practice)."""
        token: bytes = self._fernet(create=True).encrypt(json.dumps(value).encode())
        return token.decode()

    def decrypt(self, token: str, *, what: str) -> Any:
        """The value of ``token``; ``what`` names the secret in the error (entity, attribute)."""
        from cryptography.fernet import InvalidToken

        try:
            plain: bytes = self._fernet(create=False).decrypt(token.encode())
        except InvalidToken:
            raise SecretKeyError(
                f"{what} cannot be decrypted with the key in {self.key_file}: the key file was "
                "replaced or comes from another installation. Restore the data directory's "
                f"original {self.key_file.name} from your backup (or set the secret again: "
                "write the attribute with its value)"
            ) from None
        return json.loads(plain)

    def add_key(self) -> None:
        """Start encrypting with a new key: it becomes the first line of the key file; the old
        keys stay for decryption until :meth:`forget_old_keys`."""
        from cryptography.fernet import Fernet

        self._fernet(create=True)  # the current keys must be readable
        keys = [Fernet.generate_key().decode(), *self._load(create=False)]
        write_secret(self.key_file, "\n".join(keys))
        self._keys = keys

    def reencrypt(self, token: str) -> str:
        """``token`` encrypted again with the current (first) key."""
        rotated: bytes = self._fernet(create=False).rotate(token.encode())
        return rotated.decode()

    def forget_old_keys(self) -> None:
        """Keep only the current key (after every token was re-encrypted with it)."""
        keys = self._load(create=False)[:1]
        write_secret(self.key_file, "\n".join(keys))
        self._keys = keys


def rotate_key(cipher: SecretCipher, stores: Iterable[EntityStore]) -> int:
    """Encrypt every secret in ``stores`` (the entity stores of all tenants) with a new key, then
    drop the old keys; returns how many values were re-encrypted. Safe to run again after a
    crash: until the end the key file holds the new key and the old ones."""
    cipher.add_key()
    count = 0
    for store in stores:
        writes = []
        for rt_id, document in store.list_meta(SECRETS_NAMESPACE).items():
            rotated = {}
            for name, token in document.items():
                rotated[name] = cipher.reencrypt(str(token))
                count += 1
            writes.append(MetaWrite(SECRETS_NAMESPACE, rt_id, rotated))
        if writes:
            store.apply(WriteBatch(meta=writes))
    cipher.forget_old_keys()
    return count
