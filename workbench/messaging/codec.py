"""Message bodies on the wire: JSON, with :class:`EntityEvent` and datetimes tagged.

Cross-process buses (SQLite log, RabbitMQ) store bodies as UTF-8 JSON. A body is any
JSON-compatible value; :class:`~workbench.messaging.base.EntityEvent` and ``datetime`` values are
encoded as tagged objects and come back as the same types.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from workbench.errors import ValidationError
from workbench.messaging.base import EntityEvent, UpdateType

__all__ = ["decode_body", "decode_or_raw", "encode_body"]

_TAG = "$wb"


def _default(value: Any) -> Any:
    if isinstance(value, EntityEvent):
        return {
            _TAG: "EntityEvent",
            "tenantId": value.tenant_id,
            "updateType": value.update_type.value,
            "rtId": value.rt_id,
            "ckTypeId": value.ck_type_id,
            "entity": value.entity,
            "timestamp": value.timestamp.isoformat(),
        }
    if isinstance(value, datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    raise ValidationError(
        f"message body contains a {type(value).__name__} ({value!r:.80}), which cannot cross "
        "processes: send JSON-compatible values (dict, list, str, number, bool, None), datetimes "
        "or EntityEvent"
    )


def _hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag == "EntityEvent":
        return EntityEvent(
            obj["tenantId"],
            UpdateType(obj["updateType"]),
            obj["rtId"],
            obj["ckTypeId"],
            obj["entity"],
            datetime.fromisoformat(obj["timestamp"]),
        )
    if tag == "datetime":
        return datetime.fromisoformat(obj["value"])
    return obj


def encode_body(body: Any) -> bytes:
    """The wire form of ``body`` (compact UTF-8 JSON)."""
    return json.dumps(body, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


def decode_body(data: bytes | str) -> Any:
    """The body back from :func:`encode_body`."""
    return json.loads(data, object_hook=_hook)


def decode_or_raw(data: bytes) -> Any:
    """The decoded body, or the raw bytes when they are not a valid body."""
    try:
        return decode_body(data)
    except ValueError:
        return data
