"""Issue 18 "Also": GraphQL queries and mutations generated from a tenant's schema
(hypothesis-graphql, valid and invalid documents) against a real Asset Repository over HTTP.

The schema is the one the server publishes (introspection over HTTP). A server error is a 5xx
answer or a GraphQL error with ``extensions.code == "INTERNAL"`` (a resolver that crashed); the
test counts what it tried and asserts none. Bounded by the example counts (about a minute).
"""

# ruff: noqa: F811 - the server fixture is imported from limits_fixtures
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import graphql
import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from tests.security.limits_fixtures import ALL_TOKEN, fuzz_server  # noqa: F401
from workbench.testing.http import ServiceServer

#: generated documents per (kind, mode)
EXAMPLES = 100
METER = "6560a1b2c3d4e5f607182932"


def _json_value() -> st.SearchStrategy[graphql.ValueNode]:
    point = st.fixed_dictionaries(
        {
            "rtId": st.sampled_from([METER, "nope"]).map(nodes.String),
            "timeStamp": st.datetimes(timezones=st.just(UTC)).map(
                lambda d: nodes.String(d.isoformat())
            ),
            "voltage": st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        }
    ).map(
        lambda fields: nodes.Object(
            [
                graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                for k, v in fields.items()
            ]
        )
    )
    return st.one_of(
        point,
        st.text(max_size=20).map(nodes.String),
        st.integers(-(2**40), 2**40).map(nodes.Int),
    )


CUSTOM_SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
    "Long": st.integers(-(2**63), 2**63 - 1).map(nodes.Int),
    "JSON": _json_value(),
}


def _schema(server: ServiceServer) -> graphql.GraphQLSchema:
    response = httpx.post(
        f"{server.url}/tenants/energy/graphql",
        json={"query": graphql.get_introspection_query()},
        headers={"Authorization": f"Bearer {ALL_TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:300]
    return graphql.build_client_schema(response.json()["data"])


def _fuzz(
    server: ServiceServer,
    strategy: st.SearchStrategy[Any],
    counts: dict[str, int],
    server_errors: list[str],
) -> None:
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ALL_TOKEN}"}, timeout=60
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(query=strategy)
    def run(query: str) -> None:
        response = http.post("/tenants/energy/graphql", json={"query": query})
        counts["examples"] += 1
        key = str(response.status_code)
        counts[key] = counts.get(key, 0) + 1
        if response.status_code >= 500:
            server_errors.append(f"{response.status_code} {query[:500]!r}: {response.text[:300]}")
            return
        errors = response.json().get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "INTERNAL" for e in errors):
            server_errors.append(f"INTERNAL {query[:500]!r}: {response.text[:300]}")
        elif errors:
            counts["with errors"] = counts.get("with errors", 0) + 1

    try:
        run()
    finally:
        http.close()


def test_fuzz_graphql_from_the_tenant_schema(fuzz_server: ServiceServer) -> None:
    schema = _schema(fuzz_server)
    began = time.monotonic()
    counts: dict[str, int] = {"examples": 0}
    server_errors: list[str] = []
    kinds: list[tuple[str, Callable[..., st.SearchStrategy[Any]]]] = [
        ("queries", queries),
        ("mutations", mutations),
    ]
    for _name, kind in kinds:
        for mode in (Mode.POSITIVE, Mode.NEGATIVE):
            strategy = kind(schema, custom_scalars=CUSTOM_SCALARS, mode=mode, allow_x00=False)
            _fuzz(fuzz_server, strategy, counts, server_errors)
    seconds = time.monotonic() - began
    summary = (
        f"GraphQL: {counts['examples']} documents (queries and mutations, valid and invalid) "
        f"in {seconds:.0f} s, {len(server_errors)} server errors; answers {counts}"
    )
    print(summary)
    assert counts["examples"] >= 4 * EXAMPLES * 0.8, summary
    assert not server_errors, "\n".join([summary, *server_errors[:20]])
    assert httpx.get(f"{fuzz_server.url}/healthz", timeout=5).status_code == 200
