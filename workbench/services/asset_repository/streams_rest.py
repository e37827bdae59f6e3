"""Stream points in and out over REST: ``POST|GET /tenants/{id}/streams/{ckTypeId}``.

Formats by content negotiation (``Content-Type`` on POST, ``Accept`` or ``?format=`` on GET):
Apache Arrow IPC stream, Parquet, CSV and NDJSON. A GET without ``first`` returns the whole range
as a streaming response, page by page from the store, so memory stays flat for any range; with
``first`` it returns one page and its cursor in ``X-Workbench-End-Cursor`` /
``X-Workbench-Has-Next-Page``.
"""

from __future__ import annotations

import io
import json
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from workbench.errors import ValidationError
from workbench.limits import current_limits, heavy_slots
from workbench.services.access import ReadAccess, StreamWriteAccess
from workbench.streams.io import CSV_CONVERT, read_ndjson, timestamps_as_text

if TYPE_CHECKING:
    from workbench.streams.service import StreamResult, TypeStreams

__all__ = ["FORMATS", "MEDIA_TYPES", "negotiate", "router"]

#: format name → media type
MEDIA_TYPES = {
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
}
FORMATS = {media: name for name, media in MEDIA_TYPES.items()}
_ALIASES = {
    "application/vnd.apache.arrow.file": "arrow",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/jsonl": "ndjson",
    "application/json-seq": "ndjson",
    "application/json": "ndjson",
}
#: the format of a GET that accepts anything (people with curl; programs say what they want)
DEFAULT_FORMAT = "csv"
#: rows fetched from the store per page while streaming a range
STREAM_PAGE_ROWS = 100_000
#: a page of more points than this counts as a heavy request (as does a whole-range read)
HEAVY_PAGE_ROWS = 10_000
MAX_UPLOAD_BYTES = 2 * 2**30

router = APIRouter(tags=["stream data"])


def negotiate(accept: str | None, fmt: str | None) -> str:
    """The response format for an ``Accept`` header (with q-values) or a ``format`` parameter."""
    if fmt:
        if fmt not in MEDIA_TYPES:
            raise ValidationError(f"format {fmt!r} is not supported; use {', '.join(MEDIA_TYPES)}")
        return fmt
    if not accept:
        return DEFAULT_FORMAT
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    for negative_quality, _, media in sorted(ranked):
        if negative_quality == 0:
            continue
        if media in FORMATS:
            return FORMATS[media]
        if media in _ALIASES:
            return _ALIASES[media]
        if media in {"*/*", "text/*", "application/*"}:
            return DEFAULT_FORMAT if media != "application/*" else "arrow"
    raise _NotAcceptable(accept)


class _NotAcceptable(ValidationError):
    code = "NOT_ACCEPTABLE"

    def __init__(self, accept: str) -> None:
        super().__init__(
            f"cannot answer in any of {accept!r}; accept one of {', '.join(MEDIA_TYPES.values())}"
        )


def _table_from_body(content_type: str, data: bytes) -> pa.Table:
    fmt = FORMATS.get(content_type) or _ALIASES.get(content_type)
    if fmt is None:
        raise ValidationError(
            f"Content-Type {content_type or '(none)'!r} is not a stream format; send one of "
            f"{', '.join(MEDIA_TYPES.values())}"
        )
    try:
        if fmt == "arrow":
            if content_type == "application/vnd.apache.arrow.file":
                return pa.ipc.open_file(pa.py_buffer(data)).read_all()
            return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(data))
        if fmt == "csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(io.BytesIO(data), convert_options=CSV_CONVERT)
        return read_ndjson(io.BytesIO(data))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise ValidationError(f"the {fmt} body cannot be read: {exc}") from None


def _write(streams: TypeStreams, table: pa.Table, timezone: str | None) -> int:
    return int(streams.write(table, timezone=timezone))


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{name}={value!r} is not an ISO 8601 date-time; write e.g. 2026-01-01T00:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attributes(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@dataclass(frozen=True)
class _RangeQuery:
    """What a GET asks the store for (all but the page size and cursor)."""

    streams: TypeStreams
    start: datetime | None
    end: datetime | None
    rt_ids: list[str] | None
    attributes: list[str] | None
    descending: bool

    def page(self, first: int, after: str | None) -> Any:
        return self.streams.read(
            self.start,
            self.end,
            rt_ids=self.rt_ids,
            attributes=self.attributes,
            descending=self.descending,
            first=first,
            after=after,
        )


# ---- encoders: each turns a sequence of Arrow tables into byte chunks ------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


def _encode_ndjson(tables: Iterator[pa.Table]) -> Iterator[bytes]:
    for table in tables:
        lines = [
            json.dumps({k: _json_value(v) for k, v in row.items()}, separators=(",", ":"))
            for row in table.to_pylist()
        ]
        if lines:
            yield ("\n".join(lines) + "\n").encode()


def _encode_csv(tables: Iterator[pa.Table]) -> Iterator[bytes]:
    import pyarrow.csv as pacsv

    header = True
    for table in tables:
        if table.num_rows == 0 and not header:
            continue
        sink = io.BytesIO()
        pacsv.write_csv(timestamps_as_text(table), sink, pacsv.WriteOptions(include_header=header))
        header = False
        yield sink.getvalue()


class _Sink(io.RawIOBase):
    """A write-only file whose written bytes are taken out after each batch."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.buffer += view
        return view.nbytes

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def _encode_arrow(tables: Iterator[pa.Table]) -> Iterator[bytes]:
    sink = _Sink()
    writer: pa.ipc.RecordBatchStreamWriter | None = None
    for table in tables:
        if writer is None:
            writer = pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema)
        writer.write_table(table)
        chunk = sink.take()
        if chunk:
            yield chunk
    if writer is not None:
        writer.close()
        yield sink.take()


def _encode_parquet(tables: Iterator[pa.Table]) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    sink = _Sink()
    writer: pq.ParquetWriter | None = None
    for table in tables:
        if writer is None:
            writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), table.schema)
        writer.write_table(table)
        chunk = sink.take()
        if chunk:
            yield chunk
    if writer is not None:
        writer.close()
        yield sink.take()


_ENCODERS = {
    "arrow": _encode_arrow,
    "parquet": _encode_parquet,
    "csv": _encode_csv,
    "ndjson": _encode_ndjson,
}


def _rt_ids(values: list[str] | None) -> list[str] | None:
    return _attributes(values)


def _encoded(result: StreamResult, fmt: str) -> Response:
    body = b"".join(_ENCODERS[fmt](iter([result.to_arrow()])))
    headers = {"X-Workbench-Interval": result.interval} if result.interval else None
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


async def _computed(
    request: Request,
    access: ReadAccess,
    ck_type_id: str,
    fmt: str | None,
    compute: Callable[[TypeStreams], StreamResult],
) -> Response:
    """``compute`` on the streams of ``ck_type_id``, encoded in the negotiated format."""
    encoding = negotiate(request.headers.get("accept"), fmt)
    streams = await run_in_threadpool(access.tenant.streams, ck_type_id)
    result = await run_in_threadpool(compute, streams)
    return await run_in_threadpool(_encoded, result, encoding)


#: the OpenAPI responses of a route answering in every format
_IN_EVERY_FORMAT: dict[int | str, dict[str, Any]] = {
    200: {"content": {media: {} for media in MEDIA_TYPES.values()}}
}
# query parameters several routes share
_From = Annotated[str, Query(alias="from", description="ISO 8601 start (inclusive).")]
_To = Annotated[str, Query(description="ISO 8601 end (exclusive).")]
_RtIds = Annotated[list[str] | None, Query(description="Only these entities.")]
_Format = Annotated[str | None, Query(description="arrow, parquet, csv or ndjson")]


@router.get(
    "/streams/{ckTypeId:path}/aggregate",
    summary="Aggregate stream points per rtId and time bucket",
    description="Columns `rtId`, `bucket` and `<attribute><Function>` (`voltageAvg`); the "
    "interval is echoed in `X-Workbench-Interval`.",
    responses=_IN_EVERY_FORMAT,
)
async def aggregate_points(
    request: Request,
    access: ReadAccess,
    ckTypeId: str,
    *,
    from_: _From,
    to: _To,
    interval: Annotated[str, Query(description="Bucket size: 1s, 15m, 1h, 1d.")],
    functions: Annotated[
        list[str] | None, Query(description="AVG, MIN, MAX, SUM, COUNT, FIRST, LAST.")
    ] = None,
    rtId: _RtIds = None,
    attributes: Annotated[list[str] | None, Query(description="Attributes to aggregate.")] = None,
    format: _Format = None,
) -> Response:
    return await _computed(
        request,
        access,
        ckTypeId,
        format,
        lambda streams: streams.aggregate(
            _required("from", from_),
            _required("to", to),
            interval,
            _attributes(functions) or ["avg"],
            rt_ids=_rt_ids(rtId),
            attributes=_attributes(attributes),
        ),
    )


@router.get(
    "/streams/{ckTypeId:path}/downsample",
    summary="At most `limit` buckets per rtId over a range (for charts)",
    responses=_IN_EVERY_FORMAT,
)
async def downsample_points(
    request: Request,
    access: ReadAccess,
    ckTypeId: str,
    *,
    from_: _From,
    to: _To,
    limit: Annotated[int, Query(ge=1, description="The most buckets per rtId.")],
    function: Annotated[str, Query(description="Bucket value: avg (default), min, ...")] = "avg",
    rtId: _RtIds = None,
    attributes: Annotated[list[str] | None, Query(description="Attributes to include.")] = None,
    format: _Format = None,
) -> Response:
    return await _computed(
        request,
        access,
        ckTypeId,
        format,
        lambda streams: streams.downsample(
            _required("from", from_),
            _required("to", to),
            limit,
            rt_ids=_rt_ids(rtId),
            attributes=_attributes(attributes),
            function=function,
        ),
    )


@router.get(
    "/streams/{ckTypeId:path}/columns",
    summary="The stored stream columns of a type",
)
async def stream_columns(access: ReadAccess, ckTypeId: str) -> dict[str, list[str]]:
    streams = await run_in_threadpool(access.tenant.streams, ckTypeId)
    return {"columns": await run_in_threadpool(streams.columns)}


@router.delete(
    "/streams/{ckTypeId:path}",
    summary="Delete stream points in a time range (all when no range is given)",
)
async def delete_points(
    access: StreamWriteAccess,
    ckTypeId: str,
    *,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    rtId: Annotated[list[str] | None, Query()] = None,
) -> dict[str, int]:
    streams = await run_in_threadpool(access.tenant.streams, ckTypeId)
    deleted = await run_in_threadpool(
        streams.delete, _parse_time("from", from_), _parse_time("to", to), _rt_ids(rtId)
    )
    return {"deleted": int(deleted)}


def _required(name: str, value: str) -> datetime:
    parsed = _parse_time(name, value)
    if parsed is None:
        raise ValidationError(f"'{name}' is required: an ISO 8601 date-time")
    return parsed


@router.post(
    "/streams/{ckTypeId:path}",
    summary="Append stream points (Arrow IPC, Parquet, CSV or NDJSON body)",
    description="Columns: `rtId`, `timeStamp` and the type's stream attributes by field name.",
    openapi_extra={
        "requestBody": {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA_TYPES.values()
            }
        }
    },
)
async def write_points(
    request: Request,
    access: StreamWriteAccess,
    ckTypeId: str,
    timezone: Annotated[
        str | None, Query(description="Zone of naive timestamps, e.g. Europe/Vienna.")
    ] = None,
) -> dict[str, int]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ValidationError(f"the body exceeds {MAX_UPLOAD_BYTES} bytes; send it in parts")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ValidationError("the request body is empty; send the points as the body")
    table = await run_in_threadpool(_table_from_body, content_type, data)
    streams = await run_in_threadpool(access.tenant.streams, ckTypeId)
    written = await run_in_threadpool(_write, streams, table, timezone)
    return {"written": written}


@router.get(
    "/streams/{ckTypeId:path}",
    summary="Read stream points in a time range (Arrow IPC, Parquet, CSV or NDJSON)",
    description="Without `first` the whole range streams out page by page; with `first` one "
    "page comes back and `X-Workbench-End-Cursor` goes into `after` for the next.",
    responses=_IN_EVERY_FORMAT,
)
async def read_points(
    request: Request,
    access: ReadAccess,
    ckTypeId: str,
    *,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO 8601 start (inclusive).")
    ] = None,
    to: Annotated[str | None, Query(description="ISO 8601 end (exclusive).")] = None,
    rtId: Annotated[
        list[str] | None, Query(description="Only these entities (repeatable).")
    ] = None,
    attributes: Annotated[list[str] | None, Query(description="Columns, comma-separated.")] = None,
    descending: bool = False,
    first: Annotated[int | None, Query(ge=0, description="One page of this many points.")] = None,
    after: Annotated[str | None, Query(description="Cursor of the previous page.")] = None,
    format: _Format = None,
) -> Response:
    fmt = negotiate(request.headers.get("accept"), format)
    streams = await run_in_threadpool(access.tenant.streams, ckTypeId)
    query = _RangeQuery(
        streams,
        _parse_time("from", from_),
        _parse_time("to", to),
        rtId,
        _attributes(attributes),
        descending,
    )
    encode = _ENCODERS[fmt]
    media_type = MEDIA_TYPES[fmt]
    slot = ExitStack()
    limits = current_limits()
    if limits is not None and (first is None or first > HEAVY_PAGE_ROWS):
        what = "this stream read (the whole range)" if first is None else "this large page"
        slot.enter_context(heavy_slots.hold(access.tenant.id, what, limits))
    with slot:
        if first is not None:
            page = await run_in_threadpool(query.page, first, after)
            chunks = await run_in_threadpool(lambda: list(encode(iter([page.to_arrow()]))))
            headers = {"X-Workbench-Has-Next-Page": "true" if page.has_next_page else "false"}
            if page.end_cursor:
                headers["X-Workbench-End-Cursor"] = page.end_cursor
            return Response(b"".join(chunks), media_type=media_type, headers=headers)
        # read the first page before answering, so a bad query gets its status, not a broken
        # stream
        first_page = await run_in_threadpool(query.page, STREAM_PAGE_ROWS, after)
        held = slot.pop_all()  # the slot goes with the stream

    def pages() -> Iterator[pa.Table]:
        page = first_page
        while True:
            yield page.to_arrow()
            if not page.has_next_page or not page.end_cursor:
                return
            page = query.page(STREAM_PAGE_ROWS, page.end_cursor)

    stream = pages()
    # released when the stream is done with: sent, abandoned by a client that went away, or
    # never started
    weakref.finalize(stream, held.close)
    return StreamingResponse(encode(stream), media_type=media_type)
