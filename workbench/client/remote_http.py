"""The HTTP session of the remote client with one tenant: :class:`TenantHttp` (base URL, token,
errors turned back into :class:`~workbench.errors.WorkbenchError`) and the JSON it sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from workbench.client.results import error_from_code as _error
from workbench.errors import (
    BackendUnavailable,
    WorkbenchError,
)

__all__ = ["ARROW_STREAM", "JSON_HEADERS", "TenantHttp", "dumps_json", "jsonable"]


ARROW_STREAM = "application/vnd.apache.arrow.stream"
JSON_HEADERS = {"Content-Type": "application/json"}


class TenantHttp:
    """The HTTP session of one tenant: base URL, token (or an ``auth`` that supplies tokens,
    e.g. :class:`~workbench.client.client_credentials.ClientCredentialsAuth`), error
    translation."""

    def __init__(
        self,
        url: str,
        tenant: str,
        token: str | None,
        timeout: float,
        auth: httpx.Auth | None = None,
    ) -> None:
        headers = {"User-Agent": "workbench-remote"}
        if token and auth is None:
            headers["Authorization"] = f"Bearer {token}"
        self.base = url.rstrip("/")
        self.prefix = f"/tenants/{tenant}"
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=timeout, auth=auth)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, self.prefix + path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach the Asset Repository at {self.base}: {exc}; is it running "
                "(workbench serve asset-repository)?"
            ) from exc
        if response.status_code >= 400:
            raise self._to_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @staticmethod
    def _to_error(response: httpx.Response) -> WorkbenchError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and "message" in body:
            return _error(body.get("code"), str(body["message"]), body.get("details") or ())
        return WorkbenchError(
            f"the Asset Repository answered {response.status_code} {response.reason_phrase} "
            f"for {response.request.method} {response.request.url.path}"
        )

    def close(self) -> None:
        self.client.close()


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and hasattr(value, "name") and not isinstance(value, str | int):
        return value.name  # enum members by name
    return value


def dumps_json(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()
