"""Issue 18 item 5: GraphQL cost limits, body size, time limits, cancellation when the client
goes away, and per-tenant slots for heavy requests, against a real Asset Repository over HTTP.

Every refusal asserts the exact status and error code and that the server is still healthy; every
negative test has a positive twin (the same shape within the limit succeeds)."""

# ruff: noqa: F811 - the fixtures are imported from limits_fixtures
from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

import workbench
from tests.security.limits_fixtures import Limited, healthy, limited, limited_wb  # noqa: F401
from workbench.runtime.entity import EntityInput

attack = pytest.mark.attack

GRAPHQL = "/tenants/energy/graphql"


def _post(client: httpx.Client, query: str, **variables: Any) -> httpx.Response:
    return client.post(GRAPHQL, json={"query": query, "variables": variables or None})


def _refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    message: str = body["message"]
    return message


def _nested(hops: int) -> str:
    """A query nesting ``hops`` association hops (3 levels each) below two root levels."""
    inner = "name"
    for _ in range(hops):
        inner = (
            "name parent { name children(first: 1) { items { "
            f"... on DemoEnergyEnergyMeter {{ {inner} }} }} }} }}"
        )
    return f"{{ runtime {{ rtDemoEnergyEnergyMeter(first: 1) {{ items {{ {inner} }} }} }} }}"


@attack
def test_deep_nesting_is_refused_before_execution(limited: Limited) -> None:
    with limited() as (server, client):
        message = _refused(_post(client, _nested(16)), 400, "LIMIT_EXCEEDED")
        assert "nests 52 levels deep" in message, message
        assert "limit of 20" in message
        assert "WORKBENCH_GRAPHQL_MAX_DEPTH" in message
        healthy(server)
        within = _post(client, _nested(5))  # positive twin: 19 levels
        assert within.status_code == 200, within.text
        assert "errors" not in within.json(), within.text


@attack
def test_costly_query_is_refused_with_its_cost_before_execution(limited: Limited) -> None:
    # first: 20000 is over the resolvers' page limit, so an executed query would fail with a
    # different error: LIMIT_EXCEEDED shows that it never ran
    query = (
        "{ runtime { rtDemoEnergyEnergyMeter(first: 20000) { items { "
        "supplies(first: $n) { items { name } } } } } }"
    ).replace("$n", "20000")
    with limited() as (server, client):
        message = _refused(_post(client, query), 400, "LIMIT_EXCEEDED")
        # runtime 1 + connection 1 + 20000 x (items 1 + supplies 1 + 20000 x (items 1 + name 1))
        assert "estimated cost is 800040002" in message, message
        assert "budget of 50000" in message
        assert "WORKBENCH_GRAPHQL_MAX_COST" in message
        by_variable = _post(
            client,
            "query ($n: Int) { runtime { rtDemoEnergyEnergyMeter(first: $n) { items { name } } } }",
            n=1_000_000,
        )
        assert "estimated cost is 2000002" in _refused(by_variable, 400, "LIMIT_EXCEEDED")
        healthy(server)
        cheap = _post(client, query.replace("20000", "10"))  # positive twin: cost 2,000
        assert cheap.status_code == 200, cheap.text
        assert "errors" not in cheap.json(), cheap.text


@attack
def test_too_many_aliases_are_refused(limited: Limited) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    with limited() as (server, client):
        message = _refused(_post(client, aliased(101)), 400, "LIMIT_EXCEEDED")
        assert "101 aliases" in message, message
        assert "limit of 100" in message
        healthy(server)
        assert _post(client, aliased(100)).status_code == 200


@attack
def test_a_document_of_many_fields_is_refused_before_validation(limited: Limited) -> None:
    # conflicting fields: validating them (OverlappingFieldsCanBeMerged) grows with the square
    # of their number (3,000 take seconds); validation would answer VALIDATION_FAILED, the
    # limits answer LIMIT_EXCEEDED before it runs
    def conflicting(n: int) -> str:
        return "{ " + " ".join(f'__type(name: "T{i}") {{ name }}' for i in range(n)) + " }"

    with limited() as (server, client):
        many_tokens = _refused(_post(client, conflicting(3000)), 400, "LIMIT_EXCEEDED")
        assert "more than 20000 tokens" in many_tokens, many_tokens
        assert "WORKBENCH_GRAPHQL_MAX_TOKENS" in many_tokens
        fields = "{ " + "__typename " * 1001 + "}"
        many_fields = _refused(_post(client, fields), 400, "LIMIT_EXCEEDED")
        assert "selects 1001 fields" in many_fields, many_fields
        assert "WORKBENCH_GRAPHQL_MAX_FIELDS" in many_fields
        healthy(server)
        within = _post(client, "{ " + "__typename " * 1000 + "}")  # positive twin
        assert within.status_code == 200, within.text


@attack
def test_an_oversized_graphql_body_is_refused_with_413(limited: Limited) -> None:
    big = "{ __typename }" + " " * (2 * 2**20)
    with limited() as (server, client):
        message = _refused(_post(client, big), 413, "PAYLOAD_TOO_LARGE")
        assert "1048576 bytes" in message
        assert "WORKBENCH_GRAPHQL_MAX_BODY_BYTES" in message

        def chunks() -> Any:  # no Content-Length: counted while reading
            for _ in range(40):
                yield b" " * 65536

        chunked = client.post(
            GRAPHQL, content=chunks(), headers={"Content-Type": "application/json"}
        )
        _refused(chunked, 413, "PAYLOAD_TOO_LARGE")
        healthy(server)
        padded = "{ __typename }" + " " * 900_000  # positive twin: just under the limit
        assert _post(client, padded).status_code == 200


@attack
def test_a_request_body_over_the_limit_is_refused_with_413(limited: Limited) -> None:
    body = b"entities: []\n" + b"#" * (2 * 2**20)
    with limited(max_request_bytes=2**20) as (server, client):
        response = client.post(
            "/tenants/energy/runtime/import",
            content=body,
            headers={"Content-Type": "application/yaml"},
        )
        message = _refused(response, 413, "PAYLOAD_TOO_LARGE")
        assert "WORKBENCH_MAX_REQUEST_BYTES" in message
        healthy(server)
        small = client.post(
            "/tenants/energy/runtime/import",
            content=b"entities: []\n",
            headers={"Content-Type": "application/yaml"},
        )
        assert small.status_code == 200, small.text


@attack
def test_a_query_past_its_time_limit_is_stopped(limited: Limited) -> None:
    query = "{ runtime { rtDemoEnergyEnergyMeter { items { name parent { name } } } } }"
    with limited(graphql_timeout_s=0.000001) as (server, client):
        message = _refused(_post(client, query), 503, "TIMEOUT")
        assert "WORKBENCH_GRAPHQL_TIMEOUT_S" in message, message
        healthy(server)
    with limited() as (_server, client):
        assert _post(client, query).status_code == 200


def test_the_standard_introspection_query_passes_and_a_nested_one_is_refused(
    limited: Limited,
) -> None:
    from graphql import get_introspection_query

    with limited() as (server, client):
        standard = _post(client, get_introspection_query(descriptions=True))
        assert standard.status_code == 200, standard.text
        assert standard.json()["data"]["__schema"]["types"]
        nested = (
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
        )
        refused = _post(client, nested)  # graphql-core's MaxIntrospectionDepthRule
        assert refused.status_code == 200, refused.text
        errors = refused.json()["errors"]
        assert errors[0]["message"] == "Maximum introspection depth exceeded", errors
        healthy(server)


# ---- heavy requests: exports, costly queries --------------------------------------------------


def _many_sites(wb: workbench.Workbench, tenant: str, count: int) -> None:
    wb.tenant(tenant).entities.create_many(
        [EntityInput("Demo.Energy/Site", {"name": f"site {i}"}) for i in range(count)]
    )


def _wait_for(condition: Any, timeout: float = 30.0) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, "condition not reached"
        time.sleep(0.01)
    return time.monotonic() - began


@attack
def test_concurrent_heavy_requests_of_a_tenant_get_429_with_retry_after(
    limited: Limited, limited_wb: workbench.Workbench
) -> None:
    from workbench.limits import heavy_slots

    _many_sites(limited_wb, "energy", 10_000)
    with limited(heavy_per_tenant=1, retry_after_s=7) as (server, client):
        results: dict[str, httpx.Response] = {}
        slow = threading.Thread(
            target=lambda: results.setdefault("first", client.get("/tenants/energy/runtime/export"))
        )
        slow.start()
        try:
            _wait_for(lambda: heavy_slots.running("energy") == 1)
            second = client.get("/tenants/energy/runtime/export")
            message = _refused(second, 429, "TOO_MANY_REQUESTS")
            assert second.headers["retry-after"] == "7"
            assert "WORKBENCH_HEAVY_PER_TENANT=1" in message
            costly = _post(
                client, "{ runtime { rtDemoEnergySite(first: 10000) { items { name } } } }"
            )
            _refused(costly, 429, "TOO_MANY_REQUESTS")
            assert costly.headers["retry-after"] == "7"
            # light requests and other tenants go on
            light = _post(client, "{ runtime { rtDemoEnergySite(first: 5) { items { name } } } }")
            assert light.status_code == 200, light.text
            other = client.get("/tenants/other/runtime/export")
            assert other.status_code == 200, other.text
        finally:
            slow.join(60)
        assert results["first"].status_code == 200
        again = client.get("/tenants/energy/runtime/export")  # positive twin: the slot is free
        assert again.status_code == 200
        assert int(again.headers["x-workbench-entity-count"]) > 10_000
        healthy(server)


@attack
def test_an_export_stops_when_the_client_goes_away(
    limited: Limited, limited_wb: workbench.Workbench
) -> None:
    from workbench.limits import heavy_slots

    # big enough that the export outlasts the impatient client's 0.5 s with room to spare on a
    # quiet machine (10,000 sites exported in 0.45 s once the store's reads got cheaper)
    _many_sites(limited_wb, "energy", 30_000)
    with limited() as (server, client):
        began = time.monotonic()
        full = client.get("/tenants/energy/runtime/export")
        full_s = time.monotonic() - began
        assert full.status_code == 200
        assert full_s > 0.5, f"the export took {full_s:.2f} s: too fast to show cancellation"
        hasty = httpx.Client(base_url=server.url, headers=client.headers, timeout=0.5)
        outcome: list[BaseException] = []

        def give_up() -> None:
            try:
                hasty.get("/tenants/energy/runtime/export")  # gives up after 0.5 s
            except httpx.ReadTimeout as exc:
                outcome.append(exc)
            finally:
                hasty.close()

        impatient = threading.Thread(target=give_up)
        impatient.start()
        _wait_for(lambda: heavy_slots.running("energy") == 1, timeout=5)  # the export runs
        impatient.join(10)
        assert outcome, "the export answered within 0.5 s: too fast to show cancellation"
        gone = time.monotonic()
        _wait_for(lambda: heavy_slots.running("energy") == 0, timeout=full_s * 3)
        stopped_after = time.monotonic() - gone
        print(f"full export {full_s:.2f} s; stopped {stopped_after:.2f} s after the disconnect")
        assert stopped_after < full_s / 2, (stopped_after, full_s)
        healthy(server)


@attack
def test_the_limits_hold_over_websocket_too(limited: Limited) -> None:
    import asyncio

    from tests.security.fixtures_ar import GraphQLSocket
    from tests.security.limits_fixtures import ALL_TOKEN

    async def run(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with GraphQLSocket(url, ALL_TOKEN) as ws:
            payload = {"query": _nested(16)}
            await ws.send({"id": "deep", "type": "subscribe", "payload": payload})
            refused = await ws.receive()
            shallow = {"query": _nested(2)}
            await ws.send({"id": "ok", "type": "subscribe", "payload": shallow})
            answered = await ws.receive()
            return refused, answered

    with limited() as (server, _client):
        refused, answered = asyncio.run(run(f"{server.ws_url}{GRAPHQL}"))
        assert refused["id"] == "deep", refused
        assert refused["type"] == "error", refused
        assert refused["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED", refused
        assert "nests 52 levels deep" in refused["payload"][0]["message"]
        assert answered["type"] == "next", answered  # positive twin
        assert "errors" not in answered["payload"], answered
        healthy(server)


@attack
def test_whole_range_stream_reads_and_large_entity_pages_are_heavy(limited: Limited) -> None:
    from workbench.limits import Limits, heavy_slots

    streams = "/tenants/energy/streams/Demo.Energy/EnergyMeter"
    with limited(heavy_per_tenant=1) as (server, client):
        with heavy_slots.hold("energy", "a test's heavy request", Limits(heavy_per_tenant=1)):
            whole = client.get(streams, params={"format": "ndjson"})
            _refused(whole, 429, "TOO_MANY_REQUESTS")
            assert whole.headers["retry-after"] == "5"
            _refused(client.get(streams, params={"first": 50_000}), 429, "TOO_MANY_REQUESTS")
            small = client.get(streams, params={"first": 10, "format": "ndjson"})
            assert small.status_code == 200, small.text  # positive twin: a small page
            find = "/tenants/energy/entities/find"
            everything = client.post(find, json={"ckTypeId": "Demo.Energy/Site", "first": None})
            _refused(everything, 429, "TOO_MANY_REQUESTS")
            page = client.post(find, json={"ckTypeId": "Demo.Energy/Site", "first": 10})
            assert page.status_code == 200, page.text
        assert client.get(streams, params={"format": "ndjson"}).status_code == 200
        _wait_for(lambda: heavy_slots.running("energy") == 0, timeout=5)  # the stream let go
        healthy(server)


def test_a_query_past_its_time_limit_stops_its_work() -> None:
    """The time limit stops the execution itself, not only the answer: 500 fields of 10 ms
    each (5 s) stop soon after the 0.2 s limit."""
    from graphql import (
        GraphQLField,
        GraphQLList,
        GraphQLObjectType,
        GraphQLSchema,
        GraphQLString,
        execute,
        parse,
    )

    from workbench.errors import TimedOut
    from workbench.graphql.limits import guard_operation
    from workbench.limits import Cancellation, Limits, use_limits

    calls: list[int] = []

    def slow(_root: Any, _info: Any) -> str:
        calls.append(1)
        time.sleep(0.01)
        return "x"

    item = GraphQLObjectType("Item", {"name": GraphQLField(GraphQLString, resolve=slow)})
    schema = GraphQLSchema(
        GraphQLObjectType(
            "Query", {"items": GraphQLField(GraphQLList(item), resolve=lambda *_: [{}] * 500)}
        )
    )
    document = parse("{ items { name } }")
    with (
        use_limits(Limits(graphql_timeout_s=0.2), Cancellation()),
        pytest.raises(TimedOut),
        guard_operation(schema, document, None, None, "energy") as executor,
    ):
        execute(schema, document, executor_class=executor)
    # the resolvers that ran, not the wall clock (which follows the machine's load), show that
    # the work stopped: all 500 would run without the cancellation
    assert len(calls) < 150, len(calls)


def test_operations_running_at_once_keep_their_own_deadlines() -> None:
    """Two operations of one WebSocket: the first one ending must not lift the second one's
    time limit (they shared one deadline on the connection's Cancellation)."""
    from graphql import build_schema, parse

    from workbench.errors import TimedOut
    from workbench.graphql.limits import guard_operation
    from workbench.limits import Cancellation, Limits, use_limits

    schema = build_schema("type Query { a: String }")
    document = parse("{ a }")
    with use_limits(Limits(graphql_timeout_s=0.05), Cancellation()):
        first = guard_operation(schema, document, None, None, "energy")
        second = guard_operation(schema, document, None, None, "energy")
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        time.sleep(0.1)
        with pytest.raises(TimedOut):
            second.__exit__(None, None, None)
