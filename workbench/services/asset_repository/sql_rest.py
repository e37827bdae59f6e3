"""``POST /tenants/{tenantId}/streams/sql``: read-only SQL over the tenant's stream views.

Body ``{"sql": "SELECT ...", "format": "arrow|parquet|csv|ndjson|json"}`` (or the format from
``Accept``). The statement is checked and limited as :mod:`workbench.streams.sql` describes; the
result is streamed in batches in the asked format (``json``: one array of row objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from workbench.services.access import ReadTenantDep
from workbench.services.asset_repository.streams_rest import _ENCODERS, MEDIA_TYPES, negotiate
from workbench.settings import Settings
from workbench.streams.io import timestamps_as_text
from workbench.streams.sql import SqlLimits, run_stream_sql

__all__ = ["router"]

router = APIRouter(prefix="/tenants/{tenantId}", tags=["stream data"])

_BATCH_ROWS = 10_000


class SqlRequest(BaseModel):
    sql: str = Field(description="One SELECT over the stream views (one per CK type).")
    format: str | None = Field(
        default=None, description="arrow, parquet, csv, ndjson or json (default: from Accept)."
    )


def _batches(table: pa.Table) -> Iterator[pa.Table]:
    if table.num_rows == 0:
        yield table
    for offset in range(0, table.num_rows, _BATCH_ROWS):
        yield table.slice(offset, _BATCH_ROWS)


def _encode_json(tables: Iterator[pa.Table]) -> Iterator[bytes]:
    yield b"["
    first = True
    for table in tables:
        for row in timestamps_as_text(table).to_pylist():
            yield (b"" if first else b",") + json.dumps(row, default=str).encode()
            first = False
    yield b"]"


@router.post(
    "/streams/sql",
    summary="Read-only SQL over the tenant's stream data",
    description="One SELECT over the stream views: each CK type with stream data is a view "
    'named by its type id (`"Demo.Energy/EnergyMeter"`) or short name '
    "(`demo_energy__energymeter`), with the API's column names. Files, extensions, other "
    "databases, DDL and DML are refused; timeout, rows and bytes are limited per statement.",
    responses={200: {"content": {m: {} for m in [*MEDIA_TYPES.values(), "application/json"]}}},
)
async def stream_sql(
    request: Request, access: ReadTenantDep, body: SqlRequest
) -> StreamingResponse:
    fmt = "json" if body.format == "json" else negotiate(request.headers.get("accept"), body.format)
    limits = SqlLimits.from_settings(Settings())
    store = await run_in_threadpool(lambda: access.tenant.stream_service.store)
    table = await run_in_threadpool(run_stream_sql, store, body.sql, limits)
    if fmt == "json":
        return StreamingResponse(_encode_json(_batches(table)), media_type="application/json")
    return StreamingResponse(_ENCODERS[fmt](_batches(table)), media_type=MEDIA_TYPES[fmt])
