"""``MakeHttpRequest@1``: an HTTP request from a pipeline, its response into the data context.

The request is built from the node's properties and the data context (URL, query, headers and
body at paths); the response (``status``, ``headers``, ``body``: parsed JSON, text, or base64
bytes) is written to ``targetPath``. A ``serviceAccount`` (a ``ServiceAccount`` configuration
entity the pipeline ``Uses``: clientId, clientSecret, issuerUri) adds a bearer token from the
issuer's token endpoint (OAuth client credentials, found by OIDC discovery), kept until it
expires.
"""

from __future__ import annotations

import base64
import time
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.protocols.connections import resolve_connection
from workbench.communication.schema import enum_schema

__all__ = ["NODES"]

SERVICE_ACCOUNT_TYPE = "System.Communication/ServiceAccount"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_BODY_FORMATS = ["Json", "Text", "Form"]
_RESPONSE_FORMATS = ["Auto", "Json", "Text", "Bytes"]
_PATH = {"type": "string", "description": "a JSONPath ($.a.b)"}
_STRINGS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
#: seconds before its expiry a cached token is replaced
_TOKEN_MARGIN = 30


class MakeHttpRequest(Node):
    """Sends an HTTP request (``method`` to ``url`` or the URL at ``urlPath``, with ``query``,
    ``headers`` and the body at ``bodyPath``) within ``timeoutSeconds`` and writes the response
    ``{status, headers, body}`` to ``targetPath``; a status of 400 or more fails the node
    (unless ``failOnErrorStatus: false``)."""

    type_name = "MakeHttpRequest@1"
    properties: ClassVar[dict[str, Any]] = {
        "method": {"type": "string", "enum": _METHODS + [m.lower() for m in _METHODS]},
        "url": {"type": "string", "pattern": "^https?://", "description": "http(s)://..."},
        "urlPath": {**_PATH, "description": "path of the URL in the data context"},
        "query": {**_STRINGS, "description": "query parameters (added to the URL's own)"},
        "queryPath": {**_PATH, "description": "path of an object of query parameters"},
        "headers": {**_STRINGS, "description": "request headers"},
        "headersPath": {**_PATH, "description": "path of an object of headers (over headers)"},
        "bodyPath": {**_PATH, "description": "path of the request body"},
        "bodyFormat": enum_schema(_BODY_FORMATS, "Json (default), Text, Form (url-encoded)"),
        "responseFormat": enum_schema(
            _RESPONSE_FORMATS, "Auto (JSON for a JSON content type, else text), Json, Text, Bytes"
        ),
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
        "failOnErrorStatus": {"type": "boolean", "description": "default true"},
        "serviceAccount": {
            "type": "string",
            "description": "a ServiceAccount configuration (rtId, rtWellKnownName or name): "
            "its client-credentials token is sent as Authorization: Bearer",
        },
        "scope": {"type": "string", "description": "scope asked with the service account"},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (issuer, client id, secret), access token, monotonic expiry
        self._token: tuple[tuple[str, str, str], str, float] | None = None

    def _url(self, context: DataContext) -> str:
        url = context.get(self.prop("urlPath")) if "urlPath" in self.props else self.prop("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            where = f"at {self.prop('urlPath')}" if "urlPath" in self.props else "in url"
            raise self.error(f"no http(s) URL {where} (found {url!r}); give url or urlPath", "url")
        return url

    def _mapping(self, context: DataContext, name: str) -> dict[str, str]:
        out = {str(k): _text(v) for k, v in (self.prop(name) or {}).items()}
        if f"{name}Path" in self.props:
            found = context.get(self.prop(f"{name}Path"))
            if found is not None and not isinstance(found, dict):
                raise self.error(
                    f"expected an object at {self.prop(f'{name}Path')}, found {found!r}",
                    f"{name}Path",
                )
            out.update({str(k): _text(v) for k, v in (found or {}).items()})
        return out

    def _body(self, context: DataContext) -> dict[str, Any]:
        if "bodyPath" not in self.props:
            return {}
        value = context.get(self.prop("bodyPath"))
        form = self.enum("bodyFormat", _BODY_FORMATS, "Json")
        if form == "Text":
            return {"content": ("" if value is None else _text(value)).encode("utf-8")}
        if form == "Form":
            if not isinstance(value, dict):
                raise self.error(
                    f"bodyFormat Form needs an object at {self.prop('bodyPath')}, found {value!r}",
                    "bodyPath",
                )
            return {"data": {str(k): _text(v) for k, v in value.items()}}
        return {"json": value}

    async def _bearer(self, http: Any, env: ExecutionEnvironment) -> str:
        account = resolve_connection(
            self.prop("serviceAccount"), SERVICE_ACCOUNT_TYPE, env.configurations, env.tenant
        )
        issuer = str(account.get("issuerUri") or "").rstrip("/")
        if not issuer or not account.get("clientId"):
            raise self.error(
                f"ServiceAccount {self.prop('serviceAccount')!r} needs issuerUri and clientId",
                "serviceAccount",
            )
        key = (issuer, str(account["clientId"]), str(account.get("clientSecret") or ""))
        if self._token is not None and self._token[0] == key and self._token[2] > time.monotonic():
            return self._token[1]
        discovery = f"{issuer}/.well-known/openid-configuration"
        answer = await http.get(discovery)
        if answer.status_code != 200:
            raise self.error(
                f"the issuer's discovery document {discovery} answered {answer.status_code}",
                "serviceAccount",
            )
        token_url = answer.json().get("token_endpoint") or f"{issuer}/token"
        form = {"grant_type": "client_credentials"}
        if self.prop("scope"):
            form["scope"] = str(self.prop("scope"))
        answer = await http.post(
            token_url,
            data=form,
            auth=(str(account["clientId"]), str(account.get("clientSecret") or "")),
        )
        if answer.status_code != 200:
            raise self.error(
                f"the token endpoint {token_url} refused client {account['clientId']!r} "
                f"({answer.status_code}: {answer.text[:200]})",
                "serviceAccount",
            )
        grant = answer.json()
        lifetime = float(grant.get("expires_in") or 300)
        token = str(grant["access_token"])
        self._token = (key, token, time.monotonic() + lifetime - _TOKEN_MARGIN)
        return token

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        import httpx

        url = self._url(context)
        method = str(self.prop("method", "GET")).upper()
        headers = self._mapping(context, "headers")
        timeout = float(self.prop("timeoutSeconds", 30))
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:
                if self.prop("serviceAccount"):
                    headers["Authorization"] = f"Bearer {await self._bearer(http, env)}"
                response = await http.request(
                    method,
                    url,
                    params=self._mapping(context, "query"),
                    headers=headers,
                    **self._body(context),
                )
        except httpx.TimeoutException as exc:
            raise self.error(
                f"{method} {url} did not answer within {timeout:g} s (timeoutSeconds)", "url"
            ) from exc
        except httpx.HTTPError as exc:
            raise self.error(f"{method} {url} failed: {type(exc).__name__}: {exc}", "url") from exc
        if response.status_code >= 400 and self.prop("failOnErrorStatus", True):
            raise self.error(
                f"{method} {url} answered {response.status_code} {response.reason_phrase}: "
                f"{response.text[:200]}",
                "url",
            )
        self.write(
            context,
            {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": self._response_body(response),
            },
        )

    def _response_body(self, response: Any) -> Any:
        form = self.enum("responseFormat", _RESPONSE_FORMATS, "Auto")
        if form == "Bytes":
            return base64.b64encode(response.content).decode("ascii")
        if not response.content:
            return None
        json_type = "json" in response.headers.get("content-type", "")
        if form == "Json" or (form == "Auto" and json_type):
            try:
                return response.json()
            except ValueError as exc:
                if form == "Json":
                    raise self.error(
                        f"the answer of {response.request.url} is not JSON: {exc}",
                        "responseFormat",
                    ) from exc
        return response.text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


NODES = [MakeHttpRequest]
