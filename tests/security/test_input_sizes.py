"""Issue 18 items 6 and 9: input size limits, unstorable stream values, inputs that answered 500,
and error messages that echoed huge inputs or server temp paths, against a real Asset Repository.

Each refusal asserts the exact status and code and that the server is still healthy; each has a
positive twin."""

# ruff: noqa: F811 - the fixtures are imported from limits_fixtures
from __future__ import annotations

import httpx
import pytest

import workbench
from tests.security.limits_fixtures import (  # noqa: F401
    Limited,
    healthy,
    limited,
    limited_wb,
    meter_id,
)

attack = pytest.mark.attack

STREAMS = "/tenants/energy/streams/Demo.Energy/EnergyMeter"


def _refused(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    assert body["code"] == code, body
    return body


def _apply(client: httpx.Client, name: str) -> httpx.Response:
    return client.post(
        "/tenants/energy/entities/apply",
        json={"creates": [{"ckTypeId": "Demo.Energy/Site", "attributes": {"name": name}}]},
    )


# ---- item 6: sizes ---------------------------------------------------------------------------


@attack
def test_an_oversized_attribute_value_is_refused_naming_attribute_and_limit(
    limited: Limited,
) -> None:
    with limited(max_attribute_bytes=100_000) as (server, client):
        body = _refused(_apply(client, "x" * 100_001), 400, "VALIDATION_FAILED")
        text = str(body)
        assert "attribute 'name' of Demo.Energy/Site" in text, text
        assert "100,001 bytes" in text
        assert "limit of 100,000 bytes" in text
        assert "WORKBENCH_MAX_ATTRIBUTE_BYTES" in text
        assert len(text) < 2_000  # the value is not echoed
        mutation = (
            "mutation ($n: String!) { runtime { demoEnergySites { "
            "create(entities: [{name: $n}]) { rtId } } } }"
        )
        by_graphql = client.post(
            "/tenants/energy/graphql", json={"query": mutation, "variables": {"n": "é" * 60_000}}
        )
        assert "120,000 bytes" in by_graphql.text, by_graphql.text  # UTF-8 bytes, not characters
        assert len(by_graphql.text) < 3_000
        healthy(server)
        stored = _apply(client, "y" * 100_000)  # positive twin: at the limit
        assert stored.status_code == 200, stored.text[:300]


@attack
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/x-ndjson",
            '{"rtId":"%s","timeStamp":"2026-01-01T00:00:00Z","voltage":NaN}\n',
        ),
        (
            "application/x-ndjson",
            '{"rtId":"%s","timeStamp":"2026-01-01T00:00:00Z","voltage":Infinity}\n',
        ),
        ("text/csv", "rtId,timeStamp,voltage\n%s,2026-01-01T00:00:00Z,NaN\n"),
        ("text/csv", "rtId,timeStamp,voltage\n%s,2026-01-01T00:00:00Z,-Infinity\n"),
        ("text/csv", "rtId,timeStamp,voltage\n%s,2026-01-01T00:00:00Z,1e400\n"),
    ],
    ids=["ndjson-nan", "ndjson-infinity", "csv-nan", "csv-minus-infinity", "csv-1e400"],
)
def test_unstorable_stream_values_are_refused_not_stored_as_null(
    limited: Limited, limited_wb: workbench.Workbench, content_type: str, body: str
) -> None:
    meter = meter_id(limited_wb)
    with limited() as (server, client):
        response = client.post(
            STREAMS, content=body % meter, headers={"Content-Type": content_type}
        )
        refused = _refused(response, 400, "VALIDATION_FAILED")
        details = refused["details"]
        assert isinstance(details, list)
        assert details[0]["location"] == "row 0", details
        assert details[0]["element"] == "voltage", details
        assert "must be finite numbers" in details[0]["message"], details
        stored = client.get(STREAMS, params={"format": "ndjson"})
        assert stored.text == "", stored.text  # nothing was written
        healthy(server)
        finite = body % meter
        for bad in ("NaN", "-Infinity", "Infinity", "1e400"):
            finite = finite.replace(bad, "231.5")
        written = client.post(STREAMS, content=finite, headers={"Content-Type": content_type})
        assert written.status_code == 200, written.text
        assert '"voltage":231.5' in client.get(STREAMS, params={"format": "ndjson"}).text


def test_a_missing_value_stays_missing(limited: Limited, limited_wb: workbench.Workbench) -> None:
    meter = meter_id(limited_wb)
    with limited() as (_server, client):
        csv = f"rtId,timeStamp,voltage,current\n{meter},2026-01-01T00:00:00Z,,1.5\n"
        written = client.post(STREAMS, content=csv, headers={"Content-Type": "text/csv"})
        assert written.status_code == 200, written.text


# ---- item 9: inputs that answered 500 -------------------------------------------------------


@attack
def test_a_non_utf8_runtime_import_is_a_400_naming_the_problem(limited: Limited) -> None:
    with limited() as (server, client):
        response = client.post(
            "/tenants/energy/runtime/import",
            content=b"\xff\xfe entities: []",
            headers={"Content-Type": "application/yaml"},
        )
        body = _refused(response, 400, "VALIDATION_FAILED")
        message = str(body["message"])
        assert "not UTF-8" in message, message
        assert "0xff" in message
        healthy(server)
        fine = client.post(
            "/tenants/energy/runtime/import",
            content="entities: []  # ü\n".encode(),
            headers={"Content-Type": "application/yaml"},
        )
        assert fine.status_code == 200, fine.text


@attack
def test_runtime_import_errors_show_no_server_paths_and_no_huge_input(limited: Limited) -> None:
    with limited() as (server, client):
        broken = client.post(
            "/tenants/energy/runtime/import",
            content=b"entities: [",
            headers={"Content-Type": "application/yaml"},
        )
        text = _refused(broken, 400, "VALIDATION_FAILED")["message"]
        assert isinstance(text, str)
        assert "/tmp" not in text, text
        assert "workbench-import" not in text
        assert "the request body" in text
        huge = (
            "entities:\n  - ckTypeId: Demo.Energy/Site\n    attributes: [" + "x" * 500_000 + "]\n"
        )
        echoed = client.post(
            "/tenants/energy/runtime/import",
            content=huge.encode(),
            headers={"Content-Type": "application/yaml"},
        )
        _refused(echoed, 400, "VALIDATION_FAILED")
        assert len(echoed.text) < 3_000, len(echoed.text)
        assert "500,000 characters" in echoed.text or "500,00" in echoed.text, echoed.text
        healthy(server)


@attack
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", "rtId,timeStamp,voltage\n%s,0000-01-01T00:00:00Z,230.0\n"),
        ("application/x-ndjson", '{"rtId":"%s","timeStamp":"0000-01-01T00:00:00Z","voltage":1}\n'),
    ],
    ids=["csv", "ndjson"],
)
def test_a_year_zero_timestamp_is_a_400(
    limited: Limited, limited_wb: workbench.Workbench, content_type: str, body: str
) -> None:
    meter = meter_id(limited_wb)
    with limited() as (server, client):
        response = client.post(
            STREAMS, content=body % meter, headers={"Content-Type": content_type}
        )
        details = _refused(response, 400, "VALIDATION_FAILED")["details"]
        assert isinstance(details, list)
        assert "year is out of range (1 to 9999)" in details[0]["message"], details
        healthy(server)
        fixed = (body % meter).replace("0000-01-01", "2026-01-01")
        assert client.post(
            STREAMS, content=fixed, headers={"Content-Type": content_type}
        ).is_success


@attack
@pytest.mark.parametrize(
    "body",
    [b'[{"rtId": "x"}]\n', b"[1, 2]\n", b'\xff\xfe{"rtId": 1}\n'],
    ids=["array-of-objects", "array-of-numbers", "not-utf8"],
)
def test_an_ndjson_body_that_is_not_objects_is_a_400(limited: Limited, body: bytes) -> None:
    """Found while probing: a first line that is a JSON array (or not UTF-8) answered 500."""
    with limited() as (server, client):
        response = client.post(
            STREAMS, content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        _refused(response, 400, "VALIDATION_FAILED")
        healthy(server)
        good = b'{"rtId":"6560a1b2c3d4e5f607182932","timeStamp":"2026-01-01T00:00:00Z"}\n'
        fine = client.post(STREAMS, content=good, headers={"Content-Type": "application/x-ndjson"})
        assert fine.status_code == 200, fine.text


@attack
def test_error_messages_do_not_echo_huge_inputs(limited: Limited) -> None:
    """Deleting 20,000 unknown ids answered a 400 KB message naming every one of them."""
    ids = [f"{i:024x}" for i in range(20_000)]
    with limited() as (server, client):
        rest = client.post("/tenants/energy/entities/delete", json={"rtIds": ids})
        body = _refused(rest, 404, "NOT_FOUND")
        assert len(rest.content) < 4_000, len(rest.content)
        assert "characters" in str(body["message"])  # says that it was cut, and how long it was
        mutation = "mutation ($ids: [ID!]!) { runtime { demoEnergySites { delete(rtIds: $ids) } } }"
        by_graphql = client.post(
            "/tenants/energy/graphql", json={"query": mutation, "variables": {"ids": ids}}
        )
        assert by_graphql.status_code == 200, by_graphql.text[:300]
        assert len(by_graphql.content) < 4_000, len(by_graphql.content)
        healthy(server)
        few = client.post("/tenants/energy/entities/delete", json={"rtIds": ids[:2]})
        assert ids[1] in few.json()["message"]  # positive twin: short messages are whole
