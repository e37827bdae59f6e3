"""The remote client: ``workbench.connect(url, tenant=..., token=...)`` → :class:`RemoteTenant`.

A :class:`RemoteTenant` has the API of the in-process :class:`~workbench.client.local.Tenant`
(``ck``, ``entities``, ``streams(type)``, ``model``) over the Asset Repository's HTTP API, plus
``graphql(query, variables)``. Stream data moves as Apache Arrow IPC. Errors arrive as the same
:class:`~workbench.errors.WorkbenchError` subclasses the in-process client raises.

>>> t = workbench.connect("http://127.0.0.1:5001", tenant="demo", token="...")   # doctest: +SKIP
>>> t.entities.find("Demo.Energy/EnergyMeter", where=["state EQUALS Active"])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pyarrow as pa
import yaml

from workbench.ck import CkLibrary, CkModel, dump_library, resolve_model
from workbench.ck.loader import load_library_from_documents
from workbench.client.results import error_from_code as _error
from workbench.client.results import graphql_result, raise_graphql_errors
from workbench.client.tenant_api import TenantApi
from workbench.client.tenant_queries import TenantQueries, remote_runner
from workbench.client.tenant_streams import TenantStreams
from workbench.errors import (
    BackendUnavailable,
    NotFound,
    ValidationError,
    WorkbenchError,
)
from workbench.runtime.entity import (
    AssociationInput,
    Entity,
    EntityInput,
    EntityPage,
    EntityUpdate,
    EntityWrites,
)
from workbench.storage.base import StoredAssociation
from workbench.streams.service import StreamResult
from workbench.tenancy.catalog import ImportReport

__all__ = [
    "RemoteCkCatalog",
    "RemoteEntityService",
    "RemoteTenant",
    "RemoteTypeStreams",
    "connect",
    "graphql_result",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class _Http:
    """The HTTP session of one tenant: base URL, token, error translation."""

    def __init__(self, url: str, tenant: str, token: str | None, timeout: float) -> None:
        headers = {"User-Agent": "workbench-remote"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base = url.rstrip("/")
        self.prefix = f"/tenants/{tenant}"
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

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


# ---- entities --------------------------------------------------------------------------------


def _entity(data: Mapping[str, Any]) -> Entity:
    return Entity(
        rt_id=data["rtId"],
        ck_type_id=data["ckTypeId"],
        rt_version=int(data["rtVersion"]),
        rt_creation_datetime=datetime.fromisoformat(data["rtCreationDateTime"]),
        rt_changed_datetime=datetime.fromisoformat(data["rtChangedDateTime"]),
        attributes=dict(data.get("attributes") or {}),
        rt_well_known_name=data.get("rtWellKnownName"),
        archived=bool(data.get("archived", False)),
    )


def _where_item(value: Any) -> str | dict[str, Any]:
    from workbench.runtime.filters import FieldFilter

    if isinstance(value, str):
        return value
    if isinstance(value, FieldFilter):
        return {
            "attributePath": value.attribute_path,
            "operator": str(getattr(value.operator, "value", value.operator)),
            "comparisonValue": value.comparison_value,
        }
    if isinstance(value, tuple):
        path, operator, comparison = value
        return {"attributePath": path, "operator": str(operator), "comparisonValue": comparison}
    if isinstance(value, Mapping):
        return dict(value)
    raise ValidationError(f"filter {value!r} is not a string, tuple, dict or FieldFilter")


def _association(value: AssociationInput | tuple[str, str]) -> dict[str, Any]:
    link = value if isinstance(value, AssociationInput) else AssociationInput(*value)
    return {
        "role": link.role,
        "targetRtId": link.target_rt_id,
        "targetCkTypeId": link.target_ck_type_id,
    }


class RemoteEntityService(EntityWrites):
    """The :class:`~workbench.runtime.service.EntityService` API over HTTP."""

    def __init__(self, http: _Http) -> None:
        self._http = http

    # ---- reads

    def get(self, rt_id: str, *, include_archived: bool = False) -> Entity:
        data = self._http.json(
            "GET", f"/entities/{rt_id}", params={"includeArchived": include_archived}
        )
        return _entity(data)

    def get_many(
        self, rt_ids: Sequence[str], *, include_archived: bool = False
    ) -> dict[str, Entity]:
        data = self._http.json(
            "POST",
            "/entities/get",
            json={"rtIds": list(rt_ids), "includeArchived": include_archived},
        )
        return {rt_id: _entity(item) for rt_id, item in data.items()}

    def get_by_well_known_name(self, name: str) -> Entity:
        return _entity(self._http.json("GET", f"/entities/by-name/{name}"))

    def entity_types(self, rt_ids: Sequence[str]) -> dict[str, str]:
        return {rt_id: e.ck_type_id for rt_id, e in self.get_many(rt_ids).items()}

    def find(
        self,
        ck_type_id: str,
        *,
        where: Iterable[Any] = (),
        search: str | None = None,
        search_paths: Sequence[str] = ("name",),
        sort: Iterable[str | tuple[str, bool]] = (),
        first: int | None = 100,
        after: str | None = None,
        rt_ids: Sequence[str] | None = None,
        include_archived: bool = False,
        include_total: bool = False,
        polymorphic: bool = True,
    ) -> EntityPage:
        """A page of entities (same arguments as ``EntityService.find``)."""
        body = {
            "ckTypeId": ck_type_id,
            "where": [_where_item(w) for w in where],
            "search": search,
            "searchPaths": list(search_paths),
            "sort": [s if isinstance(s, str) else list(s) for s in sort],
            "first": first,
            "after": after,
            "rtIds": list(rt_ids) if rt_ids is not None else None,
            "includeArchived": include_archived,
            "includeTotal": include_total,
            "polymorphic": polymorphic,
        }
        data = self._http.json("POST", "/entities/find", json=body)
        return EntityPage(
            items=[_entity(item) for item in data["items"]],
            has_next_page=bool(data["pageInfo"]["hasNextPage"]),
            end_cursor=data["pageInfo"]["endCursor"],
            total_count=data.get("totalCount"),
            cursors=list(data.get("cursors") or []),
        )

    def count(self, ck_type_id: str, *, where: Iterable[Any] = ()) -> int:
        body = {"ckTypeId": ck_type_id, "where": [_where_item(w) for w in where]}
        return int(self._http.json("POST", "/entities/count", json=body)["count"])

    def aggregate(
        self,
        ck_type_id: str,
        *,
        group_by: Sequence[str] = (),
        avg: Sequence[str] = (),
        count: Sequence[str] = (),
        min: Sequence[str] = (),
        max: Sequence[str] = (),
        sum: Sequence[str] = (),
        where: Iterable[Any] = (),
        search: str | None = None,
        search_paths: Sequence[str] = ("name",),
        resolve_enum_values_to_names: bool = True,
        first: int | None = None,
        after: str | None = None,
    ) -> Any:
        """Statistics computed by the server, as ``EntityService.aggregate`` returns them."""
        from workbench.client.remote_aggregate import remote_aggregate

        def post(payload: dict[str, Any]) -> dict[str, Any]:
            body: dict[str, Any] = self._http.json(
                "POST", "/graphql", content=_dumps(payload), headers=_JSON
            )
            return body

        lists = {"avg": avg, "count": count, "min": min, "max": max, "sum": sum}
        return remote_aggregate(
            post,
            _where_item,
            ck_type_id,
            lists,
            group_by=group_by,
            where=where,
            search=search,
            search_paths=search_paths,
            resolve_enum_values_to_names=resolve_enum_values_to_names,
            first=first,
            after=after,
        )

    def navigate(self, rt_id: str, name: str, *, include_archived: bool = False) -> list[Entity]:
        data = self._http.json(
            "GET",
            f"/entities/{rt_id}/navigate/{name}",
            params={"includeArchived": include_archived},
        )
        return [_entity(item) for item in data]

    def links(
        self, rt_ids: Sequence[str], direction: Literal["outbound", "inbound"] = "outbound"
    ) -> list[StoredAssociation]:
        data = self._http.json(
            "POST", "/entities/links", json={"rtIds": list(rt_ids), "direction": direction}
        )
        return [
            StoredAssociation(
                source_rt_id=item["sourceRtId"],
                source_ck_type_id=item["sourceCkTypeId"],
                role_id=item["roleId"],
                target_rt_id=item["targetRtId"],
                target_ck_type_id=item["targetCkTypeId"],
            )
            for item in data
        ]

    # ---- writes

    def delete(
        self, rt_ids: Sequence[str] | str, *, erase: bool = False, cascade: bool = False
    ) -> list[str]:
        ids = [rt_ids] if isinstance(rt_ids, str) else list(rt_ids)
        data = self._http.json(
            "POST", "/entities/delete", json={"rtIds": ids, "erase": erase, "cascade": cascade}
        )
        return list(data["deleted"])

    def apply(
        self, *, creates: Sequence[EntityInput] = (), updates: Sequence[EntityUpdate] = ()
    ) -> list[Entity]:
        """Create and update entities in one atomic batch (on the server)."""
        body = {
            "creates": [
                {
                    "ckTypeId": c.ck_type_id,
                    "attributes": _jsonable(dict(c.attributes)),
                    "rtId": c.rt_id,
                    "rtWellKnownName": c.rt_well_known_name,
                    "associations": [_association(a) for a in c.associations],
                    "keyedBy": c.keyed_by,
                }
                for c in creates
            ],
            "updates": [
                {
                    "rtId": u.rt_id,
                    "attributes": _jsonable(dict(u.attributes)),
                    "rtVersion": u.rt_version,
                    "rtWellKnownName": u.rt_well_known_name,
                    "addAssociations": [_association(a) for a in u.add_associations],
                    "removeAssociations": [_association(a) for a in u.remove_associations],
                    "keyedBy": u.keyed_by,
                }
                for u in updates
            ],
        }
        data = self._http.json("POST", "/entities/apply", content=_dumps(body), headers=_JSON)
        return [_entity(item) for item in data]


_JSON = {"Content-Type": "application/json"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and hasattr(value, "name") and not isinstance(value, str | int):
        return value.name  # enum members by name
    return value


def _dumps(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()


# ---- Construction Kit ------------------------------------------------------------------------


def _library_upload(source: Path | str | CkLibrary) -> tuple[bytes, str]:
    if isinstance(source, CkLibrary):
        text = yaml.safe_dump(dump_library(source), sort_keys=False, allow_unicode=True)
        return text.encode(), "application/yaml"
    path = Path(source)
    if path.is_dir():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if file.is_file() and not any(p.startswith(".") for p in relative.parts):
                    archive.write(file, relative.as_posix())
        return buffer.getvalue(), "application/zip"
    if not path.is_file():
        raise NotFound(f"construction kit library {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    media = {".json": "application/json", ".zip": "application/zip"}.get(suffix, "application/yaml")
    return path.read_bytes(), media


def _report(data: Mapping[str, Any]) -> ImportReport:
    return ImportReport(
        model_id=data["modelId"],
        previous_model_id=data.get("previousModelId"),
        added_types=list(data.get("addedTypes") or []),
        changed_types=list(data.get("changedTypes") or []),
        removed_types=list(data.get("removedTypes") or []),
        migrated_entities=int(data.get("migratedEntities") or 0),
        unchanged=bool(data.get("unchanged")),
    )


class RemoteCkCatalog:
    """The :class:`~workbench.tenancy.catalog.CkCatalog` API over HTTP.

    ``model()`` asks the server for the model's stamp and re-resolves locally only when it
    changed, so it sees imports made by any process, like the in-process catalog does.
    """

    def __init__(self, http: _Http, tenant_id: str) -> None:
        self._http = http
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._model: tuple[tuple[int, ...], CkModel, dict[str, CkLibrary], set[str]] | None = None

    def stamp(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self._http.json("GET", "/ck/stamp")["stamp"])

    def generation(self) -> int:
        return self.stamp()[0]

    def _state(self) -> tuple[tuple[int, ...], CkModel, dict[str, CkLibrary], set[str]]:
        stamp = self.stamp()
        with self._lock:
            if self._model is not None and self._model[0] == stamp:
                return self._model
        response = self._http.request("GET", "/ck/libraries", params={"compiled": True})
        libraries: dict[str, CkLibrary] = {}
        own: set[str] = set()
        for item in response.json():
            libraries[item["name"]] = load_library_from_documents(
                [(f"{self.tenant_id}:{item['name']}", item["library"])]
            )
            if not item.get("inherited"):
                own.add(item["name"])
        fresh = tuple(json.loads(response.headers.get("X-Workbench-Ck-Stamp", "[]"))) or stamp
        model = resolve_model(list(libraries.values()))
        state = (tuple(int(x) for x in fresh), model, libraries, own)
        with self._lock:
            self._model = state
        return state

    def model(self) -> CkModel:
        """The tenant's resolved model (re-fetched when any process changed the libraries)."""
        return self._state()[1]

    def libraries(self) -> dict[str, CkLibrary]:
        return dict(self._state()[2])

    def own_libraries(self) -> dict[str, CkLibrary]:
        _, _, libraries, own = self._state()
        return {name: lib for name, lib in libraries.items() if name in own}

    def export_library(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._http.json(
            "GET", f"/ck/libraries/{name}", params={"format": "json"}
        )
        return data

    def import_library(self, source: Path | str | CkLibrary) -> ImportReport:
        """Import (or upgrade to) a library: a folder, a compiled file, a zip or a CkLibrary."""
        content, media = _library_upload(source)
        data = self._http.json(
            "POST", "/ck/libraries", content=content, headers={"Content-Type": media}
        )
        return _report(data)

    def validate(self, source: Path | str | CkLibrary) -> CkModel:
        """The model as it would be with ``source`` imported; ModelError if it does not resolve."""
        content, media = _library_upload(source)
        data = self._http.json(
            "POST", "/ck/validate", content=content, headers={"Content-Type": media}
        )
        return resolve_model(
            load_library_from_documents([(f"validate:{i}", doc)])
            for i, doc in enumerate(data["libraries"])
        )


# ---- stream data -----------------------------------------------------------------------------


def _to_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False)
    raise ValidationError(
        f"cannot write {type(data).__name__} as stream points; pass a list of dicts, a pandas "
        "DataFrame or a pyarrow Table"
    )


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _read_ipc(content: bytes) -> pa.Table:
    if not content:
        return pa.table({})
    return pa.ipc.open_stream(pa.py_buffer(content)).read_all()


def _iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


class RemoteTypeStreams:
    """Stream data of one CK type over HTTP, as Arrow IPC both ways."""

    def __init__(self, http: _Http, ck_type_id: str) -> None:
        self._http = http
        self.ck_type_id = ck_type_id

    def write(self, data: Any, *, timezone: str | None = None) -> int:
        """Append points (list of dicts, pandas DataFrame or pyarrow Table); returns the count.
        ``timezone`` names the zone of naive timestamps (``Europe/Vienna``)."""
        result = self._http.json(
            "POST",
            f"/streams/{self.ck_type_id}",
            content=_ipc_bytes(_to_table(data)),
            headers={"Content-Type": ARROW_STREAM},
            params=_params(("timezone", timezone)),
        )
        return int(result["written"])

    def read(
        self,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        descending: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> StreamResult:
        """Points in ``[from_, to)``; one page with ``first``, else the whole range."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)), ("after", after))
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        if attributes:
            params.append(("attributes", ",".join(attributes)))
        if descending:
            params.append(("descending", "true"))
        if first is not None:
            params.append(("first", first))
        response = self._get(f"/streams/{self.ck_type_id}", params)
        return StreamResult(
            _read_ipc(response.content),
            response.headers.get("X-Workbench-Has-Next-Page") == "true",
            response.headers.get("X-Workbench-End-Cursor"),
        )

    def aggregate(
        self,
        from_: datetime | str,
        to: datetime | str,
        interval: str,
        functions: Sequence[str] = ("avg",),
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
    ) -> StreamResult:
        """Per rtId and ``interval`` bucket: ``<attribute><Function>`` columns."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)), ("interval", interval))
        params += [("functions", f) for f in functions]
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        params += [("attributes", a) for a in attributes or ()]
        response = self._get(f"/streams/{self.ck_type_id}/aggregate", params)
        return StreamResult(
            _read_ipc(response.content), interval=response.headers.get("X-Workbench-Interval")
        )

    def downsample(
        self,
        from_: datetime | str,
        to: datetime | str,
        limit: int,
        *,
        rt_ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        function: str = "avg",
    ) -> StreamResult:
        """At most ``limit`` buckets per rtId (``result.interval`` is the bucket chosen)."""
        params = _params(
            ("from", _iso(from_)), ("to", _iso(to)), ("limit", limit), ("function", function)
        )
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        params += [("attributes", a) for a in attributes or ()]
        response = self._get(f"/streams/{self.ck_type_id}/downsample", params)
        return StreamResult(
            _read_ipc(response.content), interval=response.headers.get("X-Workbench-Interval")
        )

    def delete(
        self,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        rt_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete the points with ``from_ <= timestamp < to`` (all when both are None)."""
        params = _params(("from", _iso(from_)), ("to", _iso(to)))
        params += [("rtId", rt_id) for rt_id in rt_ids or ()]
        data = self._http.json("DELETE", f"/streams/{self.ck_type_id}", params=params)
        return int(data["deleted"])

    def columns(self) -> list[str]:
        """Names (as in results) of the stored columns of this type."""
        data = self._http.json("GET", f"/streams/{self.ck_type_id}/columns")
        return list(data["columns"])

    def _get(self, path: str, params: list[tuple[str, Any]]) -> httpx.Response:
        return self._http.request("GET", path, params=params, headers={"Accept": ARROW_STREAM})


def _params(*pairs: tuple[str, Any]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in pairs if value is not None]


# ---- GraphQL results -------------------------------------------------------------------------


# ---- the tenant ------------------------------------------------------------------------------


class RemoteTenant:
    """A tenant reached through the Asset Repository; the API of the in-process ``Tenant``."""

    def __init__(
        self, url: str, tenant_id: str, *, token: str | None = None, timeout: float = 60.0
    ) -> None:
        self.id = tenant_id
        self.url = url.rstrip("/")
        self._http = _Http(url, tenant_id, token, timeout)
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
                content=_dumps({"sql": query, "format": "arrow"}),
                headers=_JSON,
            )
            return _read_ipc(response.content)

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
            payload["variables"] = _jsonable(dict(variables))
        if operation_name:
            payload["operationName"] = operation_name
        body = self._http.json("POST", "/graphql", content=_dumps(payload), headers=_JSON)
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
