"""The remote client: ``workbench.connect(url, tenant=..., token=...)`` → :class:`RemoteTenant`.

A :class:`RemoteTenant` has the API of the in-process :class:`~workbench.client.local.Tenant`
(``ck``, ``entities``, ``streams(type)``, ``model``) over the Asset Repository's HTTP API, plus
``graphql(query, variables)``. Stream data moves as Apache Arrow IPC. Errors arrive as the same
:class:`~workbench.errors.WorkbenchError` subclasses the in-process client raises. The parts are
:mod:`.remote_catalog`, :mod:`.remote_entities`, :mod:`.remote_streams` and :mod:`.remote_http`.

>>> t = workbench.connect("http://127.0.0.1:5001", tenant="demo", token="...")   # doctest: +SKIP
>>> t.entities.find("Demo.Energy/EnergyMeter", where=["state EQUALS Active"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from workbench.ck import CkModel
from workbench.client.remote_catalog import RemoteCkCatalog
from workbench.client.remote_entities import RemoteEntityService
from workbench.client.remote_http import JSON_HEADERS, TenantHttp, dumps_json, jsonable
from workbench.client.remote_streams import RemoteTypeStreams, read_ipc
from workbench.client.results import graphql_result, raise_graphql_errors
from workbench.client.tenant_api import TenantApi
from workbench.client.tenant_queries import TenantQueries, remote_runner
from workbench.client.tenant_streams import TenantStreams

if TYPE_CHECKING:
    import httpx

__all__ = [
    "RemoteCkCatalog",
    "RemoteEntityService",
    "RemoteTenant",
    "RemoteTypeStreams",
    "connect",
    "graphql_result",
]


class RemoteTenant:
    """A tenant reached through the Asset Repository; the API of the in-process ``Tenant``."""

    def __init__(
        self,
        url: str,
        tenant_id: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        auth: httpx.Auth | None = None,
    ) -> None:
        """``token``: a bearer token; ``auth`` instead: tokens renewed as they expire
        (:class:`~workbench.client.client_credentials.ClientCredentialsAuth`)."""
        self.id = tenant_id
        self.url = url.rstrip("/")
        self._http = TenantHttp(url, tenant_id, token, timeout, auth)
        self.ck = RemoteCkCatalog(self._http, tenant_id)
        self.entities = RemoteEntityService(self._http)

    @property
    def model(self) -> CkModel:
        return self.ck.model()

    @property
    def queries(self) -> TenantQueries:
        """Persisted queries, run by the Asset Repository: ``run(name_or_rt_id)``."""
        return TenantQueries(remote_runner(self.graphql))

    @property
    def streams(self) -> TenantStreams[RemoteTypeStreams]:
        """``streams(type_id)``: stream data of one CK type (``write`` and ``read`` as Arrow
        over HTTP); ``streams.sql(query)``: read-only SQL over them all, answered as Arrow."""

        def sql(query: str) -> pa.Table:
            response = self._http.request(
                "POST",
                "/streams/sql",
                content=dumps_json({"sql": query, "format": "arrow"}),
                headers=JSON_HEADERS,
            )
            return read_ipc(response.content)

        return TenantStreams(lambda ck_type_id: RemoteTypeStreams(self._http, ck_type_id), sql)

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Run a GraphQL query or mutation on the tenant's endpoint.

        Returns a DataFrame when the result is a list (see :func:`graphql_result`), else the
        ``data`` dict; ``raw=True`` always returns the dict. GraphQL errors raise the matching
        :class:`~workbench.errors.WorkbenchError` (``extensions.code``).
        """
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = jsonable(dict(variables))
        if operation_name:
            payload["operationName"] = operation_name
        body = self._http.json(
            "POST", "/graphql", content=dumps_json(payload), headers=JSON_HEADERS
        )
        raise_graphql_errors(body.get("errors") or [])
        data = body.get("data")
        return data if raw else graphql_result(data)

    def ping(self) -> bool:
        """True when the service answers and the tenant is reachable with this token."""
        self.ck.stamp()
        return True

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteTenant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteTenant {self.id} at {self.url}>"


#: mypy checks that the remote tenant offers the SDK's API (see workbench.client.tenant_api)
_TENANT_API: type[TenantApi] = RemoteTenant


def connect(
    url: str, *, tenant: str, token: str | None = None, timeout: float = 60.0
) -> RemoteTenant:
    """A client for ``tenant`` on the Asset Repository at ``url`` (``http://127.0.0.1:5001``).

    ``token`` is the bearer token (default: ``WORKBENCH_API_TOKEN`` from the environment).
    """
    if token is None:
        from workbench.settings import Settings

        secret = Settings().api_token
        token = secret.get_secret_value() if secret is not None else None
    return RemoteTenant(url, tenant, token=token, timeout=timeout)
