"""Message bodies on the wire: JSON, with :class:`EntityEvent` and datetimes tagged.

Cross-process buses (SQLite log, RabbitMQ) store bodies as UTF-8 JSON. A body is any
JSON-compatible value; :class:`~workbench.messaging.base.EntityEvent` and ``datetime`` values are
encoded as tagged objects and come back as the same types.

Bodies are encoded and decoded with orjson straight to and from bytes (a 1,000-point
stream-points body in about a fifth of the stdlib's time each way); what orjson refuses goes
through the stdlib ``json`` as before: a dict with non-string keys, an int past 64 bits, a body
holding a tag (decoded by the stdlib's object hook), ``NaN`` in a body an older release wrote.
As in the edge outbox, NaN and infinities are encoded as ``null`` (JSON has no such numbers).
:class:`EncodedBody` is a body already in its wire form (the edge outbox hands its stored rows to
the bus without decoding and encoding them again).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson

from workbench.errors import ValidationError
from workbench.messaging.base import EntityEvent, UpdateType

__all__ = ["EncodedBody", "decode_body", "decode_or_raw", "encode_body"]

_TAG = "$wb"
#: a run of 20 digits is an integer past 64 bits, which orjson would turn into a float: digits are
#: mapped to "d" (everything else to ".") and the run looked for (a fifth of orjson's own time;
#: a regular expression over the digits took longer than the stdlib's decoding)
_DIGITS = bytes(100 if 48 <= i <= 57 else 46 for i in range(256))
_LONG_RUN = b"d" * 20
#: datetimes and dataclasses (EntityEvent) go to ``_default``, as with the stdlib encoder
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class EncodedBody:
    """A body in its wire form (UTF-8 JSON as :func:`encode_body` makes it, or as the edge
    outbox stored it): :func:`encode_body` sends these bytes as they are."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def decode(self) -> Any:
        """The body's value."""
        return decode_body(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncodedBody) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"EncodedBody({self.data[:60]!r}{'...' if len(self.data) > 60 else ''})"


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
    """The wire form of ``body`` (compact UTF-8 JSON; see the module docstring)."""
    if isinstance(body, EncodedBody):
        return body.data
    try:
        return orjson.dumps(body, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # non-string keys, big ints, or _default's own error
        return json.dumps(
            body, default=_default, separators=(",", ":"), ensure_ascii=False
        ).encode()


def decode_body(data: bytes | str) -> Any:
    """The body back from :func:`encode_body`."""
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else bytes(data)
    if _orjson_reads(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, a lone surrogate, ... (or not JSON: the stdlib raises its own error)
    return json.loads(data, object_hook=_hook)


def _orjson_reads(raw: bytes) -> bool:
    """Whether orjson decodes ``raw`` as the stdlib would: no tag for the object hook (nor an
    escaped ``$`` that may spell one), no integer past 64 bits."""
    if b"$wb" in raw or b"\\u0024" in raw:
        return False
    return _LONG_RUN not in raw.translate(_DIGITS)


def decode_or_raw(data: bytes) -> Any:
    """The decoded body, or the raw bytes when they are not a valid body."""
    try:
        return decode_body(data)
    except ValueError:
        return data
