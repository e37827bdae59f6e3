"""MakeHttpRequest@1 against a real HTTP server started here on loopback: the request built from
the data context, the response in it, timeouts and error statuses naming the URL, and a bearer
token of a ServiceAccount configuration (OIDC discovery + client credentials)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from workbench.communication import build_pipeline, validate_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.anyio

CLIENT, SECRET, TOKEN = "plant-adapter", "s3cret", "token-1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Peer:
    """What the server saw: token requests and the Authorization of each protected call."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []


def _app(peer: Peer, url: Any) -> Starlette:
    async def echo(request: Request) -> Response:
        raw = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "query": dict(request.query_params),
                "contentType": request.headers.get("content-type"),
                "meter": request.headers.get("x-meter"),
                "body": raw.decode(),
            },
            headers={"X-Served-By": "peer"},
        )

    async def text(request: Request) -> Response:
        return PlainTextResponse("plain words")

    async def missing(request: Request) -> Response:
        return PlainTextResponse(f"no meter {request.path_params['id']}", status_code=404)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(2)  # longer than the node's timeout; the client gives up first
        return PlainTextResponse("late")

    async def discovery(request: Request) -> Response:
        return JSONResponse({"issuer": url(), "token_endpoint": f"{url()}/connect/token"})

    async def token(request: Request) -> Response:
        form = dict(await request.form())
        auth = request.headers.get("authorization", "")
        peer.token_requests.append(form)
        expected = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
        if auth != expected or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 600})

    async def protected(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        peer.authorizations.append(authorization)
        if authorization != f"Bearer {TOKEN}":
            return PlainTextResponse("unauthorized", status_code=401)
        return JSONResponse({"readings": [1, 2]})

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT"]),
            Route("/text", text),
            Route("/meters/{id}", missing),
            Route("/slow", slow),
            Route("/.well-known/openid-configuration", discovery),
            Route("/connect/token", token, methods=["POST"]),
            Route("/protected", protected),
        ]
    )


@pytest.fixture
def server() -> Iterator[tuple[ServiceServer, Peer]]:
    peer = Peer()
    holder: list[ServiceServer] = []
    with ServiceServer(_app(peer, lambda: holder[0].url)) as running:
        holder.append(running)
        yield running, peer


def _pipeline(body: str) -> Any:
    return build_pipeline(
        "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n" + body, name="http"
    )


async def test_request_from_the_data_context_and_response_into_it(
    server: tuple[ServiceServer, Peer],
) -> None:
    running, _ = server
    pipeline = _pipeline(
        """
  - type: MakeHttpRequest@1
    method: POST
    urlPath: $.target
    query: {unit: kWh}
    queryPath: $.filters
    headers: {X-Meter: fixed}
    headersPath: $.extraHeaders
    bodyPath: $.reading
    targetPath: $.response
  - {type: MakeHttpRequest@1, url: "URL/text", targetPath: $.text}
  - {type: MakeHttpRequest@1, url: "URL/echo", method: put, bodyPath: $.reading.meter,
     bodyFormat: Text, responseFormat: Bytes, targetPath: $.raw}
""".replace("URL", running.url)
    )
    data = {
        "target": f"{running.url}/echo",
        "filters": {"since": "2026-03-01"},
        "extraHeaders": {"X-Meter": "m7"},
        "reading": {"meter": "m7", "kWh": 12.5},
    }
    result = await pipeline.execute(data, ExecutionEnvironment())
    assert result.status == "Completed", result.error
    response = result.output["response"]
    assert response["status"] == 200
    assert response["headers"]["x-served-by"] == "peer"
    assert response["body"]["method"] == "POST"
    assert response["body"]["query"] == {"unit": "kWh", "since": "2026-03-01"}
    assert response["body"]["meter"] == "m7"  # headersPath over headers
    assert response["body"]["contentType"] == "application/json"
    assert response["body"]["body"] == '{"meter":"m7","kWh":12.5}'
    assert result.output["text"]["body"] == "plain words"
    raw = base64.b64decode(result.output["raw"]["body"])
    assert b'"method":"PUT"' in raw
    assert b'"body":"m7"' in raw


async def test_error_status_and_timeout_name_the_url(server: tuple[ServiceServer, Peer]) -> None:
    running, _ = server
    missing = await _pipeline(
        f"  - {{type: MakeHttpRequest@1, url: '{running.url}/meters/7'}}\n"
    ).execute({}, ExecutionEnvironment())
    assert missing.status == "Failed"
    assert (
        f"pipeline 'http', transformations[0] (MakeHttpRequest@1): property 'url': "
        f"GET {running.url}/meters/7 answered 404 Not Found: no meter 7"
    ) == missing.error
    tolerated = await _pipeline(
        f"  - {{type: MakeHttpRequest@1, url: '{running.url}/meters/7', failOnErrorStatus: false,"
        " targetPath: $.r}\n"
    ).execute({}, ExecutionEnvironment())
    assert tolerated.status == "Completed", tolerated.error
    assert (tolerated.output["r"]["status"], tolerated.output["r"]["body"]) == (404, "no meter 7")
    slow = await _pipeline(
        f"  - {{type: MakeHttpRequest@1, url: '{running.url}/slow', timeoutSeconds: 0.3}}\n"
    ).execute({}, ExecutionEnvironment())
    assert slow.status == "Failed"
    assert f"GET {running.url}/slow did not answer within 0.3 s (timeoutSeconds)" in str(slow.error)
    closed = await _pipeline(
        "  - {type: MakeHttpRequest@1, url: 'http://127.0.0.1:9/x'}\n"
    ).execute({}, ExecutionEnvironment())
    assert closed.status == "Failed"
    assert "GET http://127.0.0.1:9/x failed: ConnectError" in str(closed.error)
    no_url = await _pipeline("  - {type: MakeHttpRequest@1, urlPath: $.nothing}\n").execute(
        {}, ExecutionEnvironment()
    )
    assert "no http(s) URL at $.nothing" in str(no_url.error)


def _account(url: str, secret: str = SECRET) -> dict[str, Any]:
    return {
        "rtId": "65f00000000000000000c001",
        "ckTypeId": "System.Communication/ServiceAccount",
        "rtWellKnownName": "plantApi",
        "name": "plant api",
        "clientId": CLIENT,
        "clientSecret": secret,
        "issuerUri": url,
    }


async def test_service_account_token_is_fetched_once_and_sent(
    server: tuple[ServiceServer, Peer],
) -> None:
    running, peer = server
    pipeline = _pipeline(
        f"  - {{type: MakeHttpRequest@1, url: '{running.url}/protected', "
        "serviceAccount: plantApi, scope: workbench_api, targetPath: $.r}\n"
    )
    env_configs = [_account(running.url)]
    for _ in range(2):
        result = await pipeline.execute({}, ExecutionEnvironment(configurations=env_configs))
        assert result.status == "Completed", result.error
        assert result.output["r"]["body"] == {"readings": [1, 2]}
    assert peer.authorizations == [f"Bearer {TOKEN}"] * 2
    assert peer.token_requests == [{"grant_type": "client_credentials", "scope": "workbench_api"}]
    wrong = await _pipeline(
        f"  - {{type: MakeHttpRequest@1, url: '{running.url}/protected', "
        "serviceAccount: plantApi}\n"
    ).execute({}, ExecutionEnvironment(configurations=[_account(running.url, "nope")]))
    assert wrong.status == "Failed"
    assert f"the token endpoint {running.url}/connect/token refused client 'plant-adapter'" in str(
        wrong.error
    )
    unknown = await pipeline.execute({}, ExecutionEnvironment(configurations=[]))
    assert "no System.Communication/ServiceAccount configuration 'plantApi'" in str(unknown.error)


def test_schema_refuses_a_bad_method_and_url() -> None:
    problems = validate_pipeline(
        "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n"
        "  - {type: MakeHttpRequest@1, method: FETCH, url: 'ftp://x'}\n"
    )
    text = " ".join(str(p) for p in problems)
    assert "'method'" in text, text
    assert "'url'" in text, text
