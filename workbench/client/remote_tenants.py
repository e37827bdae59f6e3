"""The tenant registry through the Asset Repository (``/tenants``): what ``workbench tenant``
uses with ``--url``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from workbench.client.remote_http import TenantHttp
from workbench.errors import BackendUnavailable

__all__ = ["RemoteTenants"]


class RemoteTenants:
    """List, create and delete tenants over HTTP (the caller's token decides what it may)."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        headers = {"User-Agent": "workbench-remote"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach the Asset Repository at {self.url}: {exc}"
            ) from None
        if response.status_code >= 400:
            raise TenantHttp._to_error(response)
        return response

    def list(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._request("GET", "/tenants").json()
        return data

    def create(
        self,
        tenant_id: str,
        *,
        parent: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {"id": tenant_id, "parent": parent, "description": description}
        data: dict[str, Any] = self._request(
            "POST", "/tenants", json=body | {"config": config or {}}
        ).json()
        return data

    def configure(
        self, tenant_id: str, *, set: dict[str, Any] | None = None, unset: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Set and unset configuration keys of ``tenant_id``; its configuration afterwards."""
        body = {"set": dict(set or {}), "unset": [*unset]}
        data: dict[str, Any] = self._request(
            "PATCH", f"/tenants/{tenant_id}/config", json=body
        ).json()
        return data

    def delete(self, tenant_id: str, *, confirm: str | None = None) -> None:
        """Delete ``tenant_id``; ``confirm`` must repeat the id (default: it does)."""
        self._request(
            "DELETE",
            f"/tenants/{tenant_id}",
            params={"confirm": tenant_id if confirm is None else confirm},
        )

    def close(self) -> None:
        self._client.close()
