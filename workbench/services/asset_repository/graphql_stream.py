"""Large GraphQL responses sent as they are encoded (chunked), not as one body built whole.

A query returning 10,000 entities makes a JSON document of a few megabytes; encoding it as one
``bytes`` holds that next to the result, and the client sees nothing until it is done. When the
result holds a list of at least :data:`STREAM_MIN_ITEMS` items, :func:`json_response` answers
with a streamed body instead: the document is encoded :data:`CHUNK_ITEMS` items of such lists at
a time and each piece is sent when ready (HTTP/1.1 chunked transfer), so the first bytes leave
before the last items are encoded. The bytes are the same JSON either way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

__all__ = ["CHUNK_ITEMS", "STREAM_MIN_ITEMS", "dumps", "json_chunks", "json_response"]

#: a response holding a list this long (or longer) is streamed
STREAM_MIN_ITEMS = 2_000
#: list items encoded per piece of a streamed response
CHUNK_ITEMS = 500
#: pieces are sent once they hold this many bytes (or at the end)
_SEND_BYTES = 64 * 1024


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON; the standard library's encoder for what orjson does not take
    (integers beyond 64 bits, non-string keys)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def has_large_list(value: Any) -> bool:
    """Whether ``value`` holds a list of :data:`STREAM_MIN_ITEMS` or more (looking through
    dicts, and not into lists: a list is large itself or not looked into)."""
    if type(value) is dict:
        return any(has_large_list(v) for v in value.values())
    return type(value) is list and len(value) >= STREAM_MIN_ITEMS


def _pieces(value: Any) -> Iterator[bytes]:
    if type(value) is dict and has_large_list(value):
        yield b"{"
        for index, (key, item) in enumerate(value.items()):
            yield (b"," if index else b"") + dumps(key) + b":"
            yield from _pieces(item)
        yield b"}"
    elif type(value) is list and len(value) >= STREAM_MIN_ITEMS:
        yield b"["
        for start in range(0, len(value), CHUNK_ITEMS):
            part = dumps(value[start : start + CHUNK_ITEMS])
            yield (b"," if start else b"") + part[1:-1]  # the items, without the brackets
        yield b"]"
    else:
        yield dumps(value)


def json_chunks(value: Any) -> Iterator[bytes]:
    """``value`` as JSON in pieces of about 64 KB (their concatenation is :func:`dumps`)."""
    buffer: list[bytes] = []
    size = 0
    for piece in _pieces(value):
        buffer.append(piece)
        size += len(piece)
        if size >= _SEND_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def json_response(content: Any, status: int, media_type: str) -> Response:
    """The JSON response of ``content``: streamed when it holds a large list, else one body."""
    if not has_large_list(content):
        return Response(dumps(content), status, media_type=media_type)

    async def body() -> AsyncIterator[bytes]:
        # encoded here, piece by piece: each send lets the event loop serve others meanwhile
        for chunk in json_chunks(content):
            yield chunk

    return StreamingResponse(body(), status, media_type=media_type)
