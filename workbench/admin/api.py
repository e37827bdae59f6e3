"""What the Admin Panel asks of the platform: its services' HTTP APIs, with the user's token.

The panel holds no data and checks no permission itself: every call carries the signed-in
user's access token and the service answering it (Identity, the Asset Repository) decides, with
the same checks as for the CLI, the SDK and GraphQL. A refused call becomes the
:class:`~workbench.errors.WorkbenchError` the service reported, message included, so pages show
it where the user acted.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx

from workbench.admin.model_cache import ModelCache
from workbench.ck.model import CkModel
from workbench.client.remote_tenants import RemoteTenants
from workbench.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationError,
    WorkbenchError,
)

__all__ = ["AdminApi", "ServiceEndpoint", "ServiceHealth", "shared_tls_context"]

_ERRORS: dict[int, type[WorkbenchError]] = {
    400: ValidationError,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
}


@dataclass(frozen=True)
class ServiceEndpoint:
    """A platform service the panel watches: its name and base URL."""

    name: str
    url: str


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    url: str
    live: bool
    ready: bool
    detail: str
    ms: float


@cache
def shared_tls_context() -> ssl.SSLContext:
    """One TLS context for every session's clients: loading the trust store costs about a
    quarter of a second of CPU, which each new ``httpx.Client`` would otherwise pay."""
    return httpx.create_ssl_context()


@dataclass
class AdminApi:
    """Calls to Identity (``identity_url``) and the Asset Repository (``api_url``) as ``token``.

    ``services``: the endpoints the monitoring page checks (default: the two above).
    ``models``: resolved CK models shared with the other sessions of the panel (see
    :class:`~workbench.admin.model_cache.ModelCache`; default: this API's own).
    """

    identity_url: str
    api_url: str
    token: str | None
    services: list[ServiceEndpoint] = field(default_factory=list)
    timeout: float = 30.0
    #: the Communication Controller and the Bot Service (None: not part of this platform)
    controller_url: str | None = None
    bots_url: str | None = None
    models: ModelCache = field(default_factory=ModelCache)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            headers=headers, timeout=self.timeout, verify=shared_tls_context()
        )
        self._remote_tenants: RemoteTenants | None = None
        if not self.services:
            self.services = [
                ServiceEndpoint("identity", self.identity_url),
                ServiceEndpoint("asset-repository", self.api_url),
            ]

    @property
    def _tenants(self) -> RemoteTenants:
        # made on first use: only the tenant pages need it
        if self._remote_tenants is None:
            self._remote_tenants = RemoteTenants(self.api_url, self.token, timeout=self.timeout)
        return self._remote_tenants

    def close(self) -> None:
        self._http.close()
        if self._remote_tenants is not None:
            self._remote_tenants.close()

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{url} did not answer ({type(exc).__name__}: {exc})") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("message") or body.get("error_description") or response.text
            except ValueError:
                message = response.text[:500]
            raise _ERRORS.get(response.status_code, WorkbenchError)(str(message))
        if not response.content:
            return None
        return response.json()

    def _identity(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, f"{self.identity_url.rstrip('/')}{path}", **kwargs)

    def _assets(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, f"{self.api_url.rstrip('/')}{path}", **kwargs)

    # ------------------------------------------------------------------ tenants

    def tenants(self) -> list[dict[str, Any]]:
        return self._tenants.list()

    def create_tenant(
        self,
        tenant_id: str,
        *,
        parent: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._tenants.create(
            tenant_id, parent=parent, description=description, config=config
        )

    def configure_tenant(
        self, tenant_id: str, *, set: dict[str, Any] | None = None, unset: list[str] | None = None
    ) -> dict[str, Any]:
        return self._tenants.configure(tenant_id, set=set, unset=unset or ())

    def delete_tenant(self, tenant_id: str, *, confirm: str) -> bool:
        """Delete ``tenant_id`` (``confirm`` must repeat its id); True when done."""
        self._tenants.delete(tenant_id, confirm=confirm)
        return True

    # ------------------------------------------------------------------ users, roles, clients

    def roles(self) -> list[str]:
        data = self._identity("GET", "/api/roles")
        return [r if isinstance(r, str) else r.get("name", "") for r in data]

    def users(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._identity("GET", f"/api/tenants/{tenant_id}/users")
        return result

    def create_user(
        self,
        tenant_id: str,
        username: str,
        *,
        password: str | None,
        email: str | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        body = {"username": username, "password": password, "email": email, "roles": roles or []}
        result: dict[str, Any] = self._identity(
            "POST", f"/api/tenants/{tenant_id}/users", json=body
        )
        return result

    def set_user_enabled(self, tenant_id: str, username: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._identity(
            "PATCH", f"/api/tenants/{tenant_id}/users/{username}", json={"enabled": enabled}
        )
        return result

    def reset_password(self, tenant_id: str, username: str, password: str) -> bool:
        """Set ``username``'s password; True when done."""
        self._identity(
            "POST",
            f"/api/tenants/{tenant_id}/users/{username}/password",
            json={"password": password},
        )
        return True

    def grant_role(self, tenant_id: str, username: str, role: str) -> dict[str, Any]:
        result: dict[str, Any] = self._identity(
            "PUT", f"/api/tenants/{tenant_id}/users/{username}/roles/{role}"
        )
        return result

    def revoke_role(self, tenant_id: str, username: str, role: str) -> dict[str, Any]:
        result: dict[str, Any] = self._identity(
            "DELETE", f"/api/tenants/{tenant_id}/users/{username}/roles/{role}"
        )
        return result

    def groups(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._identity("GET", f"/api/tenants/{tenant_id}/groups")
        return result

    def clients(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._identity("GET", f"/api/tenants/{tenant_id}/clients")
        return result

    def create_client(self, tenant_id: str, client_id: str, **options: Any) -> dict[str, Any]:
        body = {"clientId": client_id, **options}
        result: dict[str, Any] = self._identity(
            "POST", f"/api/tenants/{tenant_id}/clients", json=body
        )
        return result

    def rotate_client_secret(self, tenant_id: str, client_id: str) -> str:
        """A new secret for a confidential client (the old one stops working at once)."""
        data = self._identity("POST", f"/api/tenants/{tenant_id}/clients/{client_id}/secret")
        return str(data["clientSecret"])

    def set_client_enabled(self, tenant_id: str, client_id: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._identity(
            "PATCH", f"/api/tenants/{tenant_id}/clients/{client_id}", json={"enabled": enabled}
        )
        return result

    def upstreams(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._identity("GET", f"/api/tenants/{tenant_id}/upstreams")
        return result

    def audit(
        self,
        tenant_id: str,
        *,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if actor:
            params["actor"] = actor
        if action:
            params["action"] = action
        result: list[dict[str, Any]] = self._identity(
            "GET", f"/api/tenants/{tenant_id}/audit", params=params
        )
        return result

    # ------------------------------------------------------------------ models and data

    def libraries(self, tenant_id: str, *, compiled: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._assets(
            "GET", f"/tenants/{tenant_id}/ck/libraries", params={"compiled": compiled}
        )
        return result

    def import_library(self, tenant_id: str, filename: str, content: bytes) -> dict[str, Any]:
        kind = "application/zip" if filename.endswith(".zip") else "application/yaml"
        result: dict[str, Any] = self._assets(
            "POST",
            f"/tenants/{tenant_id}/ck/libraries",
            content=content,
            headers={"Content-Type": kind},
        )
        return result

    def model_stamp(self, tenant_id: str) -> tuple[int, ...]:
        """The stamp of the tenant's model (changes on every library import)."""
        data = self._assets("GET", f"/tenants/{tenant_id}/ck/stamp")
        return tuple(int(x) for x in data["stamp"])

    def model(self, tenant_id: str) -> CkModel:
        """The tenant's resolved model: the shared one while the stamp (asked as the user) is
        unchanged, else fetched through the remote SDK as the user."""
        from workbench.client.remote import connect

        def fetch() -> CkModel:
            with connect(self.api_url, tenant=tenant_id, token=self.token or "") as remote:
                return remote.model

        stamp = self.model_stamp(tenant_id)
        return self.models.get((self.api_url, tenant_id), stamp, fetch)

    def find_entities(self, tenant_id: str, ck_type_id: str, **query: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._assets(
            "POST", f"/tenants/{tenant_id}/entities/find", json={"ckTypeId": ck_type_id, **query}
        )
        return result

    def update_entity(
        self, tenant_id: str, rt_id: str, attributes: dict[str, Any], rt_version: int | None
    ) -> dict[str, Any]:
        update: dict[str, Any] = {"rtId": rt_id, "attributes": attributes}
        if rt_version is not None:
            update["rtVersion"] = rt_version
        result: dict[str, Any] = self._assets(
            "POST", f"/tenants/{tenant_id}/entities/apply", json={"updates": [update]}
        )
        return result

    def links(self, tenant_id: str, rt_id: str) -> list[dict[str, Any]]:
        """Associations of an entity, both directions (``direction`` added to each)."""
        out: list[dict[str, Any]] = []
        for direction in ("outbound", "inbound"):
            found = self._assets(
                "POST",
                f"/tenants/{tenant_id}/entities/links",
                json={"rtIds": [rt_id], "direction": direction},
            )
            out += [dict(link, direction=direction) for link in found]
        return out

    def graphql(
        self, tenant_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = self._assets(
            "POST",
            f"/tenants/{tenant_id}/graphql",
            json={"query": query, "variables": variables or {}},
        )
        if body.get("errors"):
            raise ValidationError("; ".join(e.get("message", "") for e in body["errors"]))
        data: dict[str, Any] = body["data"]
        return data

    def stream_columns(self, tenant_id: str, ck_type_id: str) -> list[str]:
        data = self._assets("GET", f"/tenants/{tenant_id}/streams/{ck_type_id}/columns")
        return list(data.get("columns", []))

    def downsample(
        self,
        tenant_id: str,
        ck_type_id: str,
        *,
        start: str,
        end: str,
        limit: int,
        rt_ids: list[str],
        attributes: list[str],
    ) -> list[dict[str, Any]]:
        """Downsampled stream points (NDJSON rows: rtId, the time, one column per attribute)."""
        params: list[tuple[str, Any]] = [("from", start), ("to", end), ("limit", limit)]
        params += [("rtId", r) for r in rt_ids] + [("attributes", a) for a in attributes]
        params.append(("format", "ndjson"))
        url = f"{self.api_url.rstrip('/')}/tenants/{tenant_id}/streams/{ck_type_id}/downsample"
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{url} did not answer ({exc})") from exc
        if response.status_code >= 400:
            raise _ERRORS.get(response.status_code, WorkbenchError)(response.text[:500])
        import json

        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    # ------------------------------------------------------------------ adapters, bots, promotions

    def _service(self, url: str | None, name: str, method: str, path: str, **kw: Any) -> Any:
        if not url:
            raise BackendUnavailable(
                f"the {name} is not configured for this panel (start it with workbench up, or "
                f"set its URL)"
            )
        return self._call(method, f"{url.rstrip('/')}{path}", **kw)

    def adapters(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._service(
            self.controller_url, "Communication Controller", "GET", f"/tenants/{tenant_id}/adapters"
        )
        return result

    def deploy_adapter(self, tenant_id: str, rt_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._service(
            self.controller_url,
            "Communication Controller",
            "POST",
            f"/tenants/{tenant_id}/adapters/{rt_id}/deploy",
        )
        return result

    def pipelines(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's pipeline entities (from the Asset Repository), by name."""
        page = self.find_entities(
            tenant_id, "System.Communication/Pipeline", first=1000, sort=["name"]
        )
        return list(page["items"])

    def validate_pipeline(self, tenant_id: str, definition: str) -> dict[str, Any]:
        """The controller's check of a pipeline definition: ``valid`` and ``problems`` (each
        with message, location, element)."""
        result: dict[str, Any] = self._service(
            self.controller_url,
            "Communication Controller",
            "POST",
            f"/tenants/{tenant_id}/pipelines/validate",
            json={"definition": definition},
        )
        return result

    def execute_pipeline(
        self, tenant_id: str, rt_id: str, input: Any = None, *, wait: float | None = None
    ) -> dict[str, Any]:
        """Run pipeline ``rt_id`` on its adapter now (``wait``: seconds to wait for the result)."""
        params = {"wait": wait} if wait else {}
        result: dict[str, Any] = self._service(
            self.controller_url,
            "Communication Controller",
            "POST",
            f"/tenants/{tenant_id}/pipelines/{rt_id}/execute",
            json={"input": input},
            params=params,
        )
        return result

    def pipeline_executions(
        self, tenant_id: str, rt_id: str, first: int = 20
    ) -> list[dict[str, Any]]:
        """The latest executions of pipeline ``rt_id``, newest first."""
        result: list[dict[str, Any]] = self._service(
            self.controller_url,
            "Communication Controller",
            "GET",
            f"/tenants/{tenant_id}/pipelines/{rt_id}/executions",
            params={"first": first},
        )
        return result

    def bots(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._service(
            self.bots_url, "Bot Service", "GET", f"/tenants/{tenant_id}/bots"
        )
        return result

    def bot_runs(self, tenant_id: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._service(
            self.bots_url,
            "Bot Service",
            "GET",
            f"/tenants/{tenant_id}/bots/{name}/runs",
            params={"limit": limit},
        )
        return result

    def run_bot(self, tenant_id: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._service(
            self.bots_url, "Bot Service", "POST", f"/tenants/{tenant_id}/bots/{name}/runs", json={}
        )
        return result

    def set_bot_enabled(self, tenant_id: str, name: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        result: dict[str, Any] = self._service(
            self.bots_url, "Bot Service", "POST", f"/tenants/{tenant_id}/bots/{name}/{action}"
        )
        return result

    def promotions(self, tenant_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._service(
            self.bots_url, "Bot Service", "GET", f"/tenants/{tenant_id}/promotions"
        )
        return result

    def rollback_promotion(self, tenant_id: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._service(
            self.bots_url,
            "Bot Service",
            "POST",
            f"/tenants/{tenant_id}/promotions/{name}/rollback",
            json={},
        )
        return result

    # ------------------------------------------------------------------ monitoring

    def health(self) -> list[ServiceHealth]:
        """``/healthz`` and ``/readyz`` of every watched service (no token needed)."""
        out = []
        tls = shared_tls_context()
        for endpoint in self.services:
            start = time.perf_counter()
            live = ready = False
            detail = ""
            try:
                live = (
                    httpx.get(f"{endpoint.url}/healthz", timeout=5, verify=tls).status_code == 200
                )
                readyz = httpx.get(f"{endpoint.url}/readyz", timeout=5, verify=tls)
                ready = readyz.status_code == 200
                detail = "ready" if ready else readyz.text[:200]
            except httpx.HTTPError as exc:
                detail = f"unreachable ({type(exc).__name__})"
            ms = round((time.perf_counter() - start) * 1000, 1)
            out.append(ServiceHealth(endpoint.name, endpoint.url, live, ready, detail, ms))
        return out
