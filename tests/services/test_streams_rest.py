"""Stream points over REST in every format, streaming ranges, aggregates."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import METER_1, METER_2
from workbench.errors import ValidationError
from workbench.services.asset_repository.streams_rest import MEDIA_TYPES, negotiate

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, tzinfo=UTC)
PATH = "/tenants/energy/streams/Demo.Energy/EnergyMeter"


def _points(n: int = 10) -> pa.Table:
    times = [START + timedelta(seconds=i) for i in range(n)]
    return pa.table(
        {
            "rtId": [METER_1 if i % 2 == 0 else METER_2 for i in range(n)],
            "timeStamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "voltage": [230.0 + i for i in range(n)],
            "current": [float(i) for i in range(n)],
        }
    )


def _encode(table: pa.Table, fmt: str) -> bytes:
    if fmt == "arrow":
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())
    if fmt == "parquet":
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()
    key = "timeStamp" if "timeStamp" in table.column_names else "timestamp"
    rows = [{**row, key: row[key].isoformat().replace("+00:00", "Z")} for row in table.to_pylist()]
    if fmt == "ndjson":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    header = ",".join(table.column_names)
    lines = [",".join(str(row[c]) for c in table.column_names) for row in rows]
    return ("\n".join([header, *lines]) + "\n").encode()


def _decode(content: bytes, fmt: str) -> list[dict[str, object]]:
    if fmt == "arrow":
        table = pa.ipc.open_stream(pa.py_buffer(content)).read_all()
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(content))
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(io.BytesIO(content))
    else:
        import pyarrow.json as pajson

        table = pajson.read_json(io.BytesIO(content))
    rows = table.select(["rtId", "timeStamp", "voltage", "current"]).to_pylist()
    for row in rows:
        stamp = row["timeStamp"]
        if isinstance(stamp, str):
            stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        row["timeStamp"] = stamp.astimezone(UTC)
    return rows


@pytest.mark.parametrize("fmt", list(MEDIA_TYPES))
def test_formats_round_trip(client: httpx.Client, fmt: str) -> None:
    table = _points()
    written = client.post(
        PATH, content=_encode(table, fmt), headers={"Content-Type": MEDIA_TYPES[fmt]}
    )
    assert written.status_code == 200, written.text
    assert written.json() == {"written": 10}
    response = client.get(
        PATH,
        params={"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()},
        headers={"Accept": MEDIA_TYPES[fmt]},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(MEDIA_TYPES[fmt])
    assert _decode(response.content, fmt) == table.to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
def test_timestamp_spelling_accepted_timestamp_returned(client: httpx.Client, fmt: str) -> None:
    """Input may say ``timestamp``; every output says ``timeStamp``; CSV times are ISO 8601."""
    table = _points(2).rename_columns(["rtId", "timestamp", "voltage", "current"])
    written = client.post(
        PATH, content=_encode(table, fmt), headers={"Content-Type": MEDIA_TYPES[fmt]}
    )
    assert written.status_code == 200, written.text
    response = client.get(PATH, params={"format": fmt})
    assert _decode(response.content, fmt)[0]["timeStamp"] == START
    if fmt == "csv":
        header, first = response.text.splitlines()[:2]
        assert header.split(",")[:2] == ['"rtId"', '"timeStamp"']
        assert '","2026-01-01T00:00:00.000000Z",' in first


def test_whole_range_streams_in_pages(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.services.asset_repository import streams_rest

    monkeypatch.setattr(streams_rest, "STREAM_PAGE_ROWS", 7)
    table = _points(50)
    client.post(
        PATH, content=_encode(table, "arrow"), headers={"Content-Type": MEDIA_TYPES["arrow"]}
    )
    for fmt in MEDIA_TYPES:
        with client.stream("GET", PATH, params={"format": fmt}) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # chunked: a streaming response
            content = response.read()
        assert _decode(content, fmt) == table.to_pylist(), fmt


def test_one_page_with_cursor_headers(client: httpx.Client) -> None:
    client.post(
        PATH, content=_encode(_points(10), "arrow"), headers={"Content-Type": MEDIA_TYPES["arrow"]}
    )
    seen = []
    after = None
    while True:
        params: dict[str, object] = {"first": 4, "rtId": METER_1, "format": "ndjson"}
        if after:
            params["after"] = after
        response = client.get(PATH, params=params)
        seen += [json.loads(line)["voltage"] for line in response.text.splitlines()]
        if response.headers["x-workbench-has-next-page"] != "true":
            break
        after = response.headers["x-workbench-end-cursor"]
    assert seen == [230.0, 232.0, 234.0, 236.0, 238.0]


def test_aggregate_and_downsample(client: httpx.Client) -> None:
    client.post(
        PATH, content=_encode(_points(20), "arrow"), headers={"Content-Type": MEDIA_TYPES["arrow"]}
    )
    params = {"from": START.isoformat(), "to": (START + timedelta(minutes=1)).isoformat()}
    aggregate = client.get(
        f"{PATH}/aggregate",
        params={
            **params,
            "interval": "10s",
            "functions": ["AVG", "MAX"],
            "format": "ndjson",
            "rtId": METER_1,
        },
    )
    assert aggregate.status_code == 200, aggregate.text
    rows = [json.loads(line) for line in aggregate.text.splitlines()]
    assert [r["voltageMax"] for r in rows] == [238.0, 248.0]
    assert aggregate.headers["x-workbench-interval"] == "10s"
    downsample = client.get(f"{PATH}/downsample", params={**params, "limit": 3, "format": "csv"})
    assert downsample.status_code == 200
    assert downsample.headers["x-workbench-interval"]


def test_bad_requests(client: httpx.Client) -> None:
    unknown_type = client.get("/tenants/energy/streams/Demo.Energy/Nope")
    assert unknown_type.status_code == 404
    wrong_media = client.post(PATH, content=b"x", headers={"Content-Type": "image/png"})
    assert wrong_media.status_code == 400
    unknown_entity = _points(2).set_column(0, "rtId", pa.array(["6560a1b2c3d4e5f6071829ff"] * 2))
    rejected = client.post(
        PATH,
        content=_encode(unknown_entity, "arrow"),
        headers={"Content-Type": MEDIA_TYPES["arrow"]},
    )
    assert rejected.status_code == 400
    assert rejected.json()["details"]
    not_acceptable = client.get(PATH, headers={"Accept": "image/png"})
    assert not_acceptable.status_code == 406
    bad_time = client.get(PATH, params={"from": "yesterday"})
    assert bad_time.status_code == 400


def test_negotiation() -> None:
    assert negotiate(None, None) == "csv"
    assert negotiate("*/*", None) == "csv"
    assert negotiate("application/vnd.apache.parquet", None) == "parquet"
    assert negotiate("text/csv;q=0.5, application/vnd.apache.arrow.stream", None) == "arrow"
    assert negotiate("text/csv;q=0, application/x-ndjson;q=0.1", None) == "ndjson"
    assert negotiate("image/png", "arrow") == "arrow"
    with pytest.raises(ValidationError):
        negotiate("image/png", None)
    with pytest.raises(ValidationError):
        negotiate(None, "xml")


def test_year_zero_timestamp_in_csv_is_a_client_error(client: httpx.Client) -> None:
    """Issue 18 item 9: a CSV row with timestamp 0000-01-01T00:00:00Z answered 500."""
    body = f"rtId,timeStamp,voltage\n{METER_1},0000-01-01T00:00:00Z,230.0\n".encode()
    response = client.post(PATH, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400, response.text
    error = response.json()
    text = json.dumps(error)
    assert "0000-01-01T00:00:00Z" in text
    assert "row 0" in text
    assert "timeStamp" in text
    assert "/tmp" not in text


def test_error_messages_cut_huge_values(client: httpx.Client) -> None:
    huge = "9" * 100_000
    body = f"rtId,timeStamp,voltage\n{METER_1},{huge},230.0\n".encode()
    response = client.post(PATH, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400, response.text
    assert len(response.text) < 5_000
    # the twin: a good row is written
    good = f"rtId,timeStamp,voltage\n{METER_1},2026-01-01T00:00:00Z,230.0\n".encode()
    assert client.post(PATH, content=good, headers={"Content-Type": "text/csv"}).json() == {
        "written": 1
    }


def test_naive_times_need_a_zone_over_rest(client: httpx.Client) -> None:
    body = f"rtId,timeStamp,voltage\n{METER_1},2026-07-01T12:00:00,230.0\n".encode()
    refused = client.post(PATH, content=body, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 400
    assert "time zone" in refused.text
    written = client.post(
        PATH,
        content=body,
        headers={"Content-Type": "text/csv"},
        params={"timezone": "Europe/Vienna"},
    )
    assert written.json() == {"written": 1}
    rows = client.get(PATH, params={"format": "ndjson"}).text.splitlines()
    assert json.loads(rows[0])["timeStamp"] == "2026-07-01T10:00:00Z"
