"""Documents of the MongoDB entity store: datetime and string encoding of values, and
entities, associations and meta documents to and from their stored shape (see
:mod:`workbench.storage.mongo`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from workbench.errors import (
    ValidationError,
    WorkbenchError,
)
from workbench.storage.base import (
    StoredAssociation,
    StoredEntity,
)
from workbench.storage.encoding import DATETIME_MARKER, escape_string, utc_text

__all__ = ["decode_datetime", "encode_datetime"]


Document = dict[str, Any]

_ENTITIES = "entities"
_ASSOCIATIONS = "associations"
_META = "meta"
_INDEXES = "indexes"
#: field holding the token of the batch that last wrote a document (undo finds its own writes)
_BATCH = "_wbBatch"
#: field holding the entity's parent id (workbench/storage/parents.py): the one target of its
#: System/ParentChild links, the list of them when several, absent when none
_PARENT = "_wbParent"

# The encoding shared with the SQLite adapter (workbench/storage/encoding.py); the pattern below is
# the exact text utc_text writes, behind the marker.
_DT_RE = re.compile(r"\$dt:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z\Z")


def encode_datetime(value: datetime) -> str:
    """A timezone-aware datetime as the sortable fixed-width UTC string stored for it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"datetime {value.isoformat()} has no timezone; pass an aware datetime "
            "(for example datetime.now(UTC))"
        )
    return DATETIME_MARKER + utc_text(value)


def decode_datetime(value: str) -> datetime | None:
    """The datetime a string made by :func:`encode_datetime` stands for, else None."""
    match = _DT_RE.match(value)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return encode_datetime(value)
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("$$"):
            return value[1:]
        if value.startswith(DATETIME_MARKER):
            decoded = decode_datetime(value)
            return value if decoded is None else decoded
        return value
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _canonical(value: Any) -> str:
    """A hashable key for comparing stored values the way the server's equality does."""

    def normalize(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: normalize(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [normalize(sub) for sub in item]
        return item

    return json.dumps(normalize(value), sort_keys=True, default=str)


def _entity_document(entity: StoredEntity, token: str) -> Document:
    return {
        "_id": entity.rt_id,
        "ckTypeId": entity.ck_type_id,
        "rtWellKnownName": entity.rt_well_known_name,
        "rtVersion": entity.rt_version,
        "rtCreationDateTime": encode_datetime(entity.rt_creation_datetime),
        "rtChangedDateTime": encode_datetime(entity.rt_changed_datetime),
        "archived": bool(entity.archived),
        "attributes": _encode(entity.attributes),
        _BATCH: token,
    }


def _entity_from_document(document: Document) -> StoredEntity:
    created = decode_datetime(document["rtCreationDateTime"])
    changed = decode_datetime(document["rtChangedDateTime"])
    if created is None or changed is None:
        raise WorkbenchError(
            f"entity {document['_id']!r} has malformed system timestamps; "
            "it was not written by this adapter"
        )
    return StoredEntity(
        rt_id=document["_id"],
        ck_type_id=document["ckTypeId"],
        attributes=_decode(document.get("attributes") or {}),
        rt_version=document["rtVersion"],
        rt_creation_datetime=created,
        rt_changed_datetime=changed,
        rt_well_known_name=document.get("rtWellKnownName"),
        archived=bool(document.get("archived", False)),
    )


def _association_id(link: StoredAssociation) -> str:
    return json.dumps([link.role_id, link.source_rt_id, link.target_rt_id])


def _association_document(link: StoredAssociation, token: str) -> Document:
    return {
        "_id": _association_id(link),
        "roleId": link.role_id,
        "sourceRtId": link.source_rt_id,
        "sourceCkTypeId": link.source_ck_type_id,
        "targetRtId": link.target_rt_id,
        "targetCkTypeId": link.target_ck_type_id,
        _BATCH: token,
    }


def _association_from_document(document: Document) -> StoredAssociation:
    return StoredAssociation(
        role_id=document["roleId"],
        source_rt_id=document["sourceRtId"],
        source_ck_type_id=document["sourceCkTypeId"],
        target_rt_id=document["targetRtId"],
        target_ck_type_id=document["targetCkTypeId"],
    )


def _meta_id(namespace: str, key: str) -> str:
    return json.dumps([namespace, key])


def _meta_decode(document: Document) -> dict[str, Any]:
    value: dict[str, Any] = _decode(json.loads(document["document"]))
    return value
