"""Anonymisation of chosen attributes of the entities of a CK type.

``mode="pseudonymise"`` replaces each value by ``anon:`` + a Fernet token (AES-128-CBC with
HMAC) made with the tenant's key: :func:`reveal` (or ``mode="reveal"``) gives the value back,
and only with that key. ``mode="hash"`` replaces it by ``anon#`` + a keyed HMAC-SHA256 digest:
irreversible, but equal values stay equal (joins and counts still work). Values already
anonymised are left alone, so the bot may run on a schedule.

The key is a file (:func:`create_key` writes one, mode 0600) — never a notebook parameter,
because a run's parameters are kept in its history.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.bots.builtin.selection import find_all
from workbench.errors import NotFound, ValidationError
from workbench.runtime.entity import EntityUpdate

__all__ = ["AnonymisationReport", "anonymise_entities", "create_key", "read_key", "reveal"]

PSEUDONYM = "anon:"
DIGEST = "anon#"
_MODES = ("pseudonymise", "hash", "reveal")


@dataclass
class AnonymisationReport:
    mode: str
    examined: int = 0
    changed: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_key(path: Path) -> bytes:
    """Write a new tenant key to ``path`` (readable by its owner only) and return it."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key)
    return key


def read_key(path: Path | str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise NotFound(
            f"anonymisation key file {str(file)!r} does not exist; create one with "
            "workbench.bots.builtin.anonymisation.create_key(path) and keep it safe"
        )
    return file.read_bytes().strip()


def _fernet(key: bytes) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key)
    except ValueError:
        raise ValidationError(
            "the anonymisation key is not a Fernet key (32 url-safe base64-encoded bytes); "
            "create one with create_key(path)"
        ) from None


def reveal(value: str, key: bytes) -> str:
    """The original of a pseudonymised value (InvalidToken with another key)."""
    if not value.startswith(PSEUDONYM):
        return value
    return str(_fernet(key).decrypt(value[len(PSEUDONYM) :].encode()).decode())


def _transform(value: Any, mode: str, key: bytes, fernet: Any) -> Any:
    if isinstance(value, list):
        return [_transform(v, mode, key, fernet) for v in value]
    if value is None:
        return None
    if mode == "reveal":
        return reveal(value, key) if isinstance(value, str) else value
    if isinstance(value, str) and value.startswith((PSEUDONYM, DIGEST)):
        return value
    text = str(value)
    if mode == "hash":
        return DIGEST + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
    return PSEUDONYM + fernet.encrypt(text.encode()).decode()


def anonymise_entities(
    tenant: Any,
    ck_type_id: str,
    attributes: list[str],
    *,
    key: bytes,
    mode: str = "pseudonymise",
    where: Any = None,
) -> AnonymisationReport:
    """Anonymise (or reveal) ``attributes`` of the entities of ``ck_type_id`` matching
    ``where``, in one atomic batch. The attributes must be String (or StringArray) ones."""
    if mode not in _MODES:
        raise ValidationError(f"anonymisation mode {mode!r}: use {', '.join(_MODES)}")
    if not attributes:
        raise ValidationError("name the attributes to anonymise, e.g. ['Name', 'Email']")
    fernet = _fernet(key)
    names = [a[:1].lower() + a[1:] for a in attributes]
    entities = find_all(tenant, ck_type_id, where)
    report = AnonymisationReport(mode, examined=len(entities))
    updates = []
    for entity in entities:
        change = {}
        for name in names:
            old = entity.attributes.get(name)
            new = _transform(old, mode, key, fernet)
            if new != old:
                change[name] = new
        if change:
            updates.append(EntityUpdate(entity.rt_id, change))
            report.changed[entity.rt_id] = sorted(change)
    if updates:
        tenant.entities.update_many(updates)
    return report
