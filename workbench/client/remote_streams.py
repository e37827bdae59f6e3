"""``RemoteTenant.streams(type_id)``: stream data of one CK type over HTTP, as Apache Arrow IPC
(:class:`RemoteTypeStreams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
import pyarrow as pa

from workbench.client.remote_http import (
    ARROW_STREAM,
    TenantHttp,
)
from workbench.errors import (
    ValidationError,
)
from workbench.streams.service import StreamResult

__all__ = ["RemoteTypeStreams", "read_ipc"]


def _to_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False)
    raise ValidationError(
        f"cannot write {type(data).__name__} as stream points; pass a list of dicts, a pandas "
        "DataFrame or a pyarrow Table"
    )


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def read_ipc(content: bytes) -> pa.Table:
    if not content:
        return pa.table({})
    return pa.ipc.open_stream(pa.py_buffer(content)).read_all()


def _iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


class RemoteTypeStreams:
    """Stream data of one CK type over HTTP, as Arrow IPC both ways."""

    def __init__(self, http: TenantHttp, ck_type_id: str) -> None:
        self._http = http
        self.ck_type_id = ck_type_id

    def write(self, data: Any, *, timezone: str | None = None) -> int:
        """Append points (list of dicts, pandas DataFrame or pyarrow Table); returns the count.
        ``timezone`` names the zone of naive timestamps (``Europe/Vienna``)."""
        result = self._http.json(
            "POST",
            f"/streams/{self.ck_type_id}",
            content=_ipc_bytes(_to_table(data)),
            headers={"Content-Type": ARROW_STREAM},
            params=_params(("timezone", timezone)),
        )
        return int(result["written"])

    def read(
        self,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        descending: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> StreamResult:
        """Points in ``[from_, to)``; one page with ``first``, else the whole range."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)), ("after", after))
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        if attributes:
            params.append(("attributes", ",".join(attributes)))
        if descending:
            params.append(("descending", "true"))
        if first is not None:
            params.append(("first", first))
        response = self._get(f"/streams/{self.ck_type_id}", params)
        return StreamResult(
            read_ipc(response.content),
            response.headers.get("X-Workbench-Has-Next-Page") == "true",
            response.headers.get("X-Workbench-End-Cursor"),
        )

    def aggregate(
        self,
        from_: datetime | str,
        to: datetime | str,
        interval: str,
        functions: Sequence[str] = ("avg",),
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
    ) -> StreamResult:
        """Per rtId and ``interval`` bucket: ``<attribute><Function>`` columns."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)), ("interval", interval))
        params += [("functions", f) for f in functions]
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        params += [("attributes", a) for a in attributes or ()]
        response = self._get(f"/streams/{self.ck_type_id}/aggregate", params)
        return StreamResult(
            read_ipc(response.content), interval=response.headers.get("X-Workbench-Interval")
        )

    def downsample(
        self,
        from_: datetime | str,
        to: datetime | str,
        limit: int,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        function: str = "avg",
    ) -> StreamResult:
        """At most ``limit`` buckets per rtId (``result.interval`` is the bucket chosen)."""
        params = _params(
            ("from", _iso(from_)), ("to", _iso(to)), ("limit", limit), ("function", function)
        )
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        params += [("attributes", a) for a in attributes or ()]
        response = self._get(f"/streams/{self.ck_type_id}/downsample", params)
        return StreamResult(
            read_ipc(response.content), interval=response.headers.get("X-Workbench-Interval")
        )

    def delete(
        self,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        rt_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete the points with ``from_ <= timestamp < to`` (all when both are None)."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)))
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        data = self._http.json("DELETE", f"/streams/{self.ck_type_id}", params=params)
        return int(data["deleted"])

    def columns(self) -> list[str]:
        """Names (as in results) of the stored columns of this type."""
        data = self._http.json("GET", f"/streams/{self.ck_type_id}/columns")
        return list(data["columns"])

    def _get(self, path: str, params: list[tuple[str, Any]]) -> httpx.Response:
        return self._http.request("GET", path, params=params, headers={"Accept": ARROW_STREAM})


def _params(*pairs: tuple[str, Any]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in pairs if value is not None]
