"""The wire codec: orjson where it gives what the stdlib gave, the stdlib where it does not."""

from __future__ import annotations

import datetime
import json
import math

import pytest

from workbench.errors import ValidationError
from workbench.messaging.base import EntityEvent, UpdateType
from workbench.messaging.codec import EncodedBody, decode_body, decode_or_raw, encode_body

WHEN = datetime.datetime(2026, 12, 6, 12, 30, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "body",
    [
        {"points": [{"rtId": "a", "timestamp": "2026-03-01T00:00:00+00:00", "v": 1.5}]},
        {"at": WHEN, "nested": [WHEN, {"again": WHEN}]},
        EntityEvent("acme", UpdateType.INSERT, "r1", "Demo/Meter", {"name": "Grüße"}, WHEN),
        {"big": 2**70, "negative": -(2**65), "edge": 2**64 - 1},
        {"$wb": "not a tag we know", "x": 1},
        "text",
        [1, -0.0, 1e300, None, True],
    ],
)
def test_bodies_come_back_as_they_were_sent(body: object) -> None:
    wire = encode_body(body)
    assert isinstance(wire, bytes)
    back = decode_body(wire)
    assert back == body
    assert type(back) is type(body)
    assert decode_body(wire.decode()) == body  # text too (the SQLite log reads text)


def test_what_the_stdlib_gave_still_decodes() -> None:
    # keys that are not strings become strings, as json.dumps makes them
    assert decode_body(encode_body({7: "seven"})) == {"7": "seven"}
    # an older release wrote NaN with the stdlib encoder; a tag may be spelled with \u0024
    assert math.isnan(decode_body(b'{"v":NaN}')["v"])
    escaped = b'{"\\u0024wb":"datetime","value":"2026-12-06T12:30:00+00:00"}'
    assert decode_body(escaped) == WHEN
    # the stdlib's wire form of a body decodes to the same value
    body = {"at": WHEN, "big": 2**70}
    stdlib = json.dumps({"at": {"$wb": "datetime", "value": WHEN.isoformat()}, "big": 2**70})
    assert decode_body(stdlib.encode()) == body


def test_nan_is_sent_as_null_as_the_outbox_does() -> None:
    assert decode_body(encode_body({"v": math.nan, "w": math.inf})) == {"v": None, "w": None}


def test_a_body_that_cannot_cross_processes_names_what_it_holds() -> None:
    for bad in ({1, 2}, object(), datetime.date(2026, 12, 6)):
        with pytest.raises(ValidationError, match="cannot cross processes"):
            encode_body({"value": bad})


def test_undecodable_bytes_raise_or_come_back_raw() -> None:
    with pytest.raises(UnicodeDecodeError, match="can't decode"):
        decode_body(b"\xff not json")
    assert decode_or_raw(b"\xff not json") == b"\xff not json"


def test_an_encoded_body_is_sent_as_it_is() -> None:
    stored = b'{"ckTypeId":"Demo/Meter","points":[]}'
    assert encode_body(EncodedBody(stored)) is stored
    assert EncodedBody(stored).decode() == {"ckTypeId": "Demo/Meter", "points": []}
