"""Large GraphQL responses over HTTP are streamed (chunked, first bytes before the last are
encoded); small ones are one body. The JSON is the same either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import workbench
from workbench.services import create_app
from workbench.services.asset_repository import graphql_stream
from workbench.testing.http import ServiceServer

LARGE = """{ runtime { rtDemoEnergyEnergyMeter(first: 300) {
  pageInfo { hasNextPage } items { rtId name serialNumber voltage phaseL1 { voltage } }
} } }"""
SMALL = "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { rtId name } } } }"


@pytest.fixture
def server(wb: workbench.Workbench, meters: Any) -> Iterator[ServiceServer]:
    with ServiceServer(create_app(workbench=wb, no_auth=True)) as running:
        yield running


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 meters count as large: streamed in pieces of 20 items, sent once 1 KB is ready."""
    monkeypatch.setattr(graphql_stream, "STREAM_MIN_ITEMS", 100)
    monkeypatch.setattr(graphql_stream, "CHUNK_ITEMS", 20)
    monkeypatch.setattr(graphql_stream, "_SEND_BYTES", 1024)


def _post(server: ServiceServer, query: str) -> tuple[httpx.Response, list[bytes]]:
    with (
        httpx.Client(base_url=server.url, timeout=30) as http,
        http.stream("POST", "/tenants/energy/graphql", json={"query": query}) as response,
    ):
        chunks = list(response.iter_raw())
    return response, chunks


def test_a_large_result_is_streamed_in_chunks(server: ServiceServer, small_limits: None) -> None:
    response, chunks = _post(server, LARGE)
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.headers["content-type"] == "application/json"
    assert len(chunks) > 5  # sent piece by piece
    body = b"".join(chunks)
    assert len(chunks[0]) < len(body) / 5  # the first bytes left long before the end
    data = json.loads(body)
    assert "errors" not in data
    items = data["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert len(items) == 300
    assert items[0]["phaseL1"]["voltage"] is not None
    assert body == graphql_stream.dumps(data)  # the same bytes as one body


def test_a_small_result_is_one_body(server: ServiceServer, small_limits: None) -> None:
    response, chunks = _post(server, SMALL)
    assert response.status_code == 200
    assert "transfer-encoding" not in response.headers
    body = b"".join(chunks)
    assert int(response.headers["content-length"]) == len(body)
    assert len(json.loads(body)["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["items"]) == 5


def test_the_pieces_are_the_documents_json(small_limits: None) -> None:
    value = {
        "data": {"a": list(range(5_000)), "b": {"c": [{"x": i} for i in range(2_500)]}, "d": []},
        "big": 2**70,  # beyond orjson: the standard library's encoder
    }
    chunks = list(graphql_stream.json_chunks(value))
    assert len(chunks) > 1
    assert json.loads(b"".join(chunks)) == value
    assert not graphql_stream.has_large_list({"data": {"a": list(range(10))}})
