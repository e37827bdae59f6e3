"""REST endpoints under ``/tenants/{tenantId}/``: CK libraries, runtime files, entities.

GraphQL is for applications; these move whole files and carry the remote SDK's entity calls
(the same :class:`~workbench.runtime.service.EntityService` methods, one endpoint each). Stream
data has its own module (:mod:`workbench.services.streams_rest`). Every handler does its work
in a worker thread (the stores are synchronous).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

import yaml
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workbench.ck import CkLibrary
from workbench.ck.loader import load_library_from_documents, parse_yaml
from workbench.ck.model import CkModel
from workbench.errors import NotFound, ValidationError
from workbench.limits import current_cancellation, current_limits, heavy_slots
from workbench.messaging.base import EntityEvent, UpdateType, entity_topic
from workbench.runtime.entity import AssociationInput, Entity, EntityInput, EntityUpdate
from workbench.runtime.files import export_runtime_file, import_runtime_document, load_runtime_text
from workbench.services.access import (
    CkImportAccess,
    EntityWriteAccess,
    ReadAccess,
    TenantAccess,
    service_state,
)
from workbench.services.streams_rest import router as streams_router

__all__ = ["entity_json", "router"]

T = TypeVar("T")

#: the largest CK upload accepted (zip expanded or YAML), in bytes
MAX_LIBRARY_BYTES = 64 * 2**20
#: a page of more entities than this (or of all: ``first: null``) counts as a heavy request
HEAVY_PAGE_ITEMS = 10_000
#: the largest runtime file accepted, in bytes
MAX_RUNTIME_BYTES = 512 * 2**20

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
ZIP_TYPES = {"application/zip", "application/x-zip-compressed"}

router = APIRouter(prefix="/tenants/{tenantId}")
router.include_router(streams_router)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _uploads(request: Request, limit: int) -> list[tuple[str, str, bytes]]:
    """``(filename, content type, bytes)`` of the body, or of each file of a multipart form."""
    content_type = _content_type(request)
    if content_type == "multipart/form-data":
        form = await request.form()
        files: list[tuple[str, str, bytes]] = []
        for _key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise ValidationError(f"upload {value.filename!r} exceeds {limit} bytes")
                files.append((value.filename or "upload", value.content_type or "", data))
        await form.close()
        if not files:
            raise ValidationError("the form holds no file; attach the file as a form field")
        return files
    data = await request.body()
    if len(data) > limit:
        raise ValidationError(f"the request body exceeds {limit} bytes")
    if not data:
        raise ValidationError("the request body is empty; send the file as the body")
    return [("body", content_type, data)]


def _is_zip(name: str, content_type: str, data: bytes) -> bool:
    return content_type in ZIP_TYPES or name.endswith(".zip") or data[:4] == b"PK\x03\x04"


def _is_json(name: str, content_type: str) -> bool:
    return content_type == "application/json" or name.endswith(".json")


def _parse_document(name: str, content_type: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{name} is not UTF-8 text") from None
    try:
        return json.loads(text) if _is_json(name, content_type) else parse_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if _is_json(name, content_type) else "YAML"
        raise ValidationError(f"{name} is not valid {kind}: {exc}") from None


def _zip_documents(data: bytes, limit: int) -> list[tuple[str, Any]]:
    """The YAML/JSON documents of a zipped library folder, named relative to ``ckModel.yaml``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValidationError("the upload is not a valid zip archive") from None
    with archive:
        entries = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and PurePosixPath(info.filename).suffix in {".yaml", ".yml", ".json"}
            and not any(
                p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(info.filename).parts
            )
        ]
        if sum(info.file_size for info in entries) > limit:
            raise ValidationError(f"the zip archive expands to more than {limit} bytes")
        roots = [
            PurePosixPath(info.filename).parent
            for info in entries
            if PurePosixPath(info.filename).name in {"ckModel.yaml", "ckModel.yml"}
        ]
        root = min(roots, key=lambda p: len(p.parts)) if roots else PurePosixPath(".")
        documents = []
        for info in entries:
            path = PurePosixPath(info.filename)
            if root != PurePosixPath(".") and root not in path.parents:
                continue
            relative = path.relative_to(root).as_posix()
            documents.append((relative, _parse_document(relative, "", archive.read(info))))
    if not documents:
        raise ValidationError("the zip archive holds no YAML or JSON library files")
    # the same order as loading the folder from disk, so the compiled form is the same
    return sorted(documents, key=lambda item: item[0])


def _library_from_upload(files: Sequence[tuple[str, str, bytes]]) -> CkLibrary:
    if len(files) == 1 and _is_zip(*files[0]):
        return load_library_from_documents(_zip_documents(files[0][2], MAX_LIBRARY_BYTES))
    documents = [(name, _parse_document(name, ctype, data)) for name, ctype, data in files]
    if len(documents) == 1:
        return load_library_from_documents([("library.yaml", documents[0][1])])
    return load_library_from_documents(documents)


def _wants_json(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        if fmt not in {"json", "yaml"}:
            raise ValidationError(f"format {fmt!r} is not supported; use 'yaml' or 'json'")
        return fmt == "json"
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "yaml" not in accept


def _yaml_or_json(request: Request, data: Any, fmt: str | None, **headers: str) -> Response:
    if _wants_json(request, fmt):
        return JSONResponse(data, headers=headers)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml", headers=headers)


async def _threaded(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(func, *args, **kwargs)


@contextmanager
def _heavy(access: TenantAccess, what: str, *, timeout: bool = False) -> Iterator[None]:
    """Hold one of the tenant's heavy-request slots (429 when none is free) and, with
    ``timeout``, limit the time to ``export_timeout_s``; no-op outside a service request."""
    limits = current_limits()
    if limits is None:
        yield
        return
    cancellation = current_cancellation()
    with heavy_slots.hold(access.tenant.id, what, limits):
        if not timeout or cancellation is None:
            yield
            return
        seconds = limits.export_timeout_s
        with cancellation.limit_time(
            seconds, f"{what} (limit {seconds:g} s, WORKBENCH_EXPORT_TIMEOUT_S)"
        ):
            yield


# ---- Construction Kit ------------------------------------------------------------------------


def _library_summaries(access: TenantAccess, compiled: bool) -> list[dict[str, Any]]:
    from workbench.ck.loader import dump_library

    catalog = access.tenant.ck
    own = catalog.own_libraries()
    out = []
    for name, library in sorted(catalog.libraries().items()):
        item: dict[str, Any] = {
            "modelId": library.model_id,
            "name": name,
            "version": str(library.version),
            "inherited": name not in own,
            "description": library.description,
        }
        if compiled:
            item["library"] = dump_library(library)
        out.append(item)
    return out


@router.get("/ck/libraries", tags=["construction kit"], summary="Libraries the tenant sees")
async def list_libraries(
    access: ReadAccess, compiled: bool = Query(False, description="Include each compiled library.")
) -> JSONResponse:
    summaries = await _threaded(_library_summaries, access, compiled)
    stamp = await _threaded(access.tenant.ck.stamp)
    return JSONResponse(summaries, headers={"X-Workbench-Ck-Stamp": json.dumps(list(stamp))})


@router.get("/ck/stamp", tags=["construction kit"], summary="Model generation (changes on import)")
async def ck_stamp(access: ReadAccess) -> dict[str, list[int]]:
    return {"stamp": list(await _threaded(access.tenant.ck.stamp))}


@router.post(
    "/ck/libraries",
    tags=["construction kit"],
    summary="Import a library (YAML, JSON, a zipped library folder, or multipart files)",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def import_library(request: Request, access: CkImportAccess) -> JSONResponse:
    files = await _uploads(request, MAX_LIBRARY_BYTES)
    library = await _threaded(_library_from_upload, files)
    report = await _threaded(access.tenant.ck.import_library, library)
    return JSONResponse(report.to_dict(), 200 if report.unchanged else 201)


@router.post(
    "/ck/validate",
    tags=["construction kit"],
    summary="Check a library against the tenant's model without importing it",
)
async def validate_library(request: Request, access: ReadAccess) -> dict[str, Any]:
    from workbench.ck.loader import dump_library

    files = await _uploads(request, MAX_LIBRARY_BYTES)
    library = await _threaded(_library_from_upload, files)
    model: CkModel = await _threaded(access.tenant.ck.validate, library)
    return {
        "valid": True,
        "modelId": library.model_id,
        "types": len(model.types),
        "libraries": [
            dump_library(lib) for name, lib in model.libraries.items() if name != "System"
        ],
    }


@router.get(
    "/ck/libraries/{modelId}",
    tags=["construction kit"],
    summary="Export a library in compiled form (YAML, or JSON with Accept: application/json)",
)
async def export_library(
    request: Request,
    access: ReadAccess,
    modelId: str,
    format: str | None = Query(None, description="'yaml' (default) or 'json'"),
) -> Response:
    data = await _threaded(access.tenant.ck.export_library, modelId)
    if "-" in modelId and data.get("modelId") != modelId:
        raise NotFound(
            f"tenant has {data.get('modelId')}, not {modelId}; ask for "
            f"{str(data.get('modelId'))!r} or for the bare name"
        )
    return _yaml_or_json(request, data, format)


# ---- runtime files ---------------------------------------------------------------------------


def _import_runtime(access: TenantAccess, files: list[tuple[str, str, bytes]]) -> dict[str, int]:
    totals = {"created": 0, "updated": 0}
    tenant = access.tenant
    for name, content_type, data in files:
        # named as the client named it: errors never show a server path
        label = "the request body" if name == "body" else repr(PurePosixPath(name).name)
        short = "body" if name == "body" else PurePosixPath(name).name
        document = load_runtime_text(data, label, as_json=_is_json(name, content_type))
        summary = import_runtime_document(tenant.entities, tenant.model, document, label, short)
        totals["created"] += summary["created"]
        totals["updated"] += summary["updated"]
    return totals


@router.post(
    "/runtime/import",
    tags=["runtime"],
    summary="Import a runtime entity file (YAML or JSON); all or nothing per file",
)
async def import_runtime(request: Request, access: EntityWriteAccess) -> dict[str, int]:
    files = await _uploads(request, MAX_RUNTIME_BYTES)
    return await _threaded(_import_runtime, access, files)


def _export_runtime(
    access: TenantAccess, ck_type_id: str | None, include_archived: bool, as_json: bool
) -> tuple[bytes, int]:
    with tempfile.TemporaryDirectory(prefix="workbench-export-") as folder:
        path = Path(folder) / ("export.json" if as_json else "export.yaml")
        tenant = access.tenant
        count = export_runtime_file(
            tenant.entities,
            tenant.model,
            path,
            ck_type_id=ck_type_id,
            include_archived=include_archived,
        )
        return path.read_bytes(), count


@router.get(
    "/runtime/export",
    tags=["runtime"],
    summary="Export runtime entities as a runtime file (YAML, or JSON)",
)
async def export_runtime(
    request: Request,
    access: ReadAccess,
    ckTypeId: str | None = Query(None, description="Only this type and its subtypes."),
    includeArchived: bool = Query(False),
    format: str | None = Query(None, description="'yaml' (default) or 'json'"),
) -> Response:
    as_json = _wants_json(request, format)
    with _heavy(access, "this runtime export", timeout=True):
        data, count = await _threaded(_export_runtime, access, ckTypeId, includeArchived, as_json)
    media = "application/json" if as_json else "application/yaml"
    return Response(data, media_type=media, headers={"X-Workbench-Entity-Count": str(count)})


# ---- entities (the remote SDK's EntityService calls) -----------------------------------------


def entity_json(entity: Entity) -> dict[str, Any]:
    """An entity for the wire: system fields, and attributes under ``attributes``."""
    return {
        "rtId": entity.rt_id,
        "ckTypeId": entity.ck_type_id,
        "rtWellKnownName": entity.rt_well_known_name,
        "rtVersion": entity.rt_version,
        "rtCreationDateTime": entity.rt_creation_datetime.isoformat(),
        "rtChangedDateTime": entity.rt_changed_datetime.isoformat(),
        "archived": entity.archived,
        "attributes": entity.attributes,
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False),
        status,
        media_type="application/json",
    )


class FindRequest(BaseModel):
    """``EntityService.find`` arguments (``where`` items: strings or FieldFilterInput dicts)."""

    ckTypeId: str
    where: list[str | dict[str, Any]] = Field(default_factory=list)
    search: str | None = None
    searchPaths: list[str] = Field(default_factory=lambda: ["name"])
    sort: list[str | tuple[str, bool]] = Field(default_factory=list)
    first: int | None = 100
    after: str | None = None
    rtIds: list[str] | None = None
    includeArchived: bool = False
    includeTotal: bool = False
    polymorphic: bool = True


def _find(access: TenantAccess, query: FindRequest) -> dict[str, Any]:
    page = access.tenant.entities.find(
        query.ckTypeId,
        where=query.where,
        search=query.search,
        search_paths=query.searchPaths,
        sort=query.sort,
        first=query.first,
        after=query.after,
        rt_ids=query.rtIds,
        include_archived=query.includeArchived,
        include_total=query.includeTotal,
        polymorphic=query.polymorphic,
    )
    return {
        "items": [entity_json(e) for e in page.items],
        "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.end_cursor},
        "totalCount": page.total_count,
        "cursors": page.cursors,
    }


@router.post("/entities/find", tags=["entities"], summary="A page of entities of a type")
async def find_entities(access: ReadAccess, query: FindRequest) -> Response:
    if query.first is None or query.first > HEAVY_PAGE_ITEMS:  # a large page: a heavy request
        with _heavy(access, "this large page of entities"):
            return _json(await _threaded(_find, access, query))
    return _json(await _threaded(_find, access, query))


class CountRequest(BaseModel):
    ckTypeId: str
    where: list[str | dict[str, Any]] = Field(default_factory=list)


@router.post("/entities/count", tags=["entities"], summary="Number of entities matching")
async def count_entities(access: ReadAccess, query: CountRequest) -> dict[str, int]:
    count = await _threaded(access.tenant.entities.count, query.ckTypeId, where=query.where)
    return {"count": count}


class GetManyRequest(BaseModel):
    rtIds: list[str]
    includeArchived: bool = False


@router.post("/entities/get", tags=["entities"], summary="Entities by rtId (missing ones left out)")
async def get_entities(access: ReadAccess, query: GetManyRequest) -> Response:
    found = await _threaded(
        access.tenant.entities.get_many, query.rtIds, include_archived=query.includeArchived
    )
    return _json({rt_id: entity_json(e) for rt_id, e in found.items()})


@router.get("/entities/{rtId}", tags=["entities"], summary="One entity")
async def get_entity(
    access: ReadAccess,
    rtId: str,
    includeArchived: bool = Query(False),
) -> Response:
    entity = await _threaded(access.tenant.entities.get, rtId, include_archived=includeArchived)
    return _json(entity_json(entity))


@router.get(
    "/entities/by-name/{name}", tags=["entities"], summary="The entity with an rtWellKnownName"
)
async def get_by_well_known_name(access: ReadAccess, name: str) -> Response:
    entity = await _threaded(access.tenant.entities.get_by_well_known_name, name)
    return _json(entity_json(entity))


@router.get(
    "/entities/{rtId}/navigate/{name}",
    tags=["entities"],
    summary="Entities linked through an association end (outbound or inbound name)",
)
async def navigate(
    access: ReadAccess,
    rtId: str,
    name: str,
    includeArchived: bool = Query(False),
) -> Response:
    entities = await _threaded(
        access.tenant.entities.navigate, rtId, name, include_archived=includeArchived
    )
    return _json([entity_json(e) for e in entities])


class LinksRequest(BaseModel):
    rtIds: list[str]
    direction: Literal["outbound", "inbound"] = "outbound"


@router.post("/entities/links", tags=["entities"], summary="Associations of entities")
async def links(access: ReadAccess, query: LinksRequest) -> Response:
    found = await _threaded(
        access.tenant.entities.links,
        query.rtIds,
        query.direction,
    )
    return _json(
        [
            {
                "sourceRtId": link.source_rt_id,
                "sourceCkTypeId": link.source_ck_type_id,
                "roleId": link.role_id,
                "targetRtId": link.target_rt_id,
                "targetCkTypeId": link.target_ck_type_id,
            }
            for link in found
        ]
    )


class AssociationBody(BaseModel):
    role: str
    targetRtId: str
    targetCkTypeId: str | None = None

    def to_input(self) -> AssociationInput:
        return AssociationInput(self.role, self.targetRtId, self.targetCkTypeId)


class CreateBody(BaseModel):
    ckTypeId: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    rtId: str | None = None
    rtWellKnownName: str | None = None
    associations: list[AssociationBody] = Field(default_factory=list)
    keyedBy: str = "name"


class UpdateBody(BaseModel):
    rtId: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    rtVersion: int | None = None
    rtWellKnownName: str | None = None
    addAssociations: list[AssociationBody] = Field(default_factory=list)
    removeAssociations: list[AssociationBody] = Field(default_factory=list)
    keyedBy: str = "name"


class ApplyRequest(BaseModel):
    creates: list[CreateBody] = Field(default_factory=list)
    updates: list[UpdateBody] = Field(default_factory=list)


def _keyed_by(value: str) -> Any:
    if value not in {"name", "id"}:
        raise ValidationError(f"keyedBy {value!r} is invalid; use 'name' or 'id'")
    return value


@router.post(
    "/entities/apply",
    tags=["entities"],
    summary="Create and update entities in one atomic batch",
)
async def apply_entities(
    request: Request, access: EntityWriteAccess, body: ApplyRequest
) -> Response:
    creates = [
        EntityInput(
            c.ckTypeId,
            c.attributes,
            c.rtId,
            c.rtWellKnownName,
            [a.to_input() for a in c.associations],
            keyed_by=_keyed_by(c.keyedBy),
        )
        for c in body.creates
    ]
    updates = [
        EntityUpdate(
            u.rtId,
            u.attributes,
            u.rtVersion,
            u.rtWellKnownName,
            [a.to_input() for a in u.addAssociations],
            [a.to_input() for a in u.removeAssociations],
            keyed_by=_keyed_by(u.keyedBy),
        )
        for u in body.updates
    ]
    result = await _threaded(access.tenant.entities.apply, creates=creates, updates=updates)
    items = [entity_json(e) for e in result]
    bus = service_state(request).bus
    topic = entity_topic(access.tenant.id)
    for index, data in enumerate(items):
        kind = UpdateType.INSERT if index < len(creates) else UpdateType.UPDATE
        bus.publish(topic, _event(access, kind, data))
    return _json(items)


def _event(access: TenantAccess, kind: UpdateType, data: Mapping[str, Any]) -> EntityEvent:
    flat = {k: v for k, v in data.items() if k != "attributes"}
    flat.update(data.get("attributes") or {})
    return EntityEvent(access.tenant.id, kind, str(data["rtId"]), str(data["ckTypeId"]), flat)


class DeleteRequest(BaseModel):
    rtIds: list[str]
    erase: bool = False
    cascade: bool = False


def _delete(access: TenantAccess, body: DeleteRequest) -> tuple[list[str], dict[str, Entity]]:
    service = access.tenant.entities
    before = service.get_many(body.rtIds, include_archived=True)
    deleted = service.delete(body.rtIds, erase=body.erase, cascade=body.cascade)
    missing = [rt_id for rt_id in deleted if rt_id not in before]
    if missing:
        before.update(service.get_many(missing, include_archived=True))
    return deleted, before


@router.post(
    "/entities/delete",
    tags=["entities"],
    summary="Archive (default) or erase entities; cascade on request",
)
async def delete_entities(
    request: Request, access: EntityWriteAccess, body: DeleteRequest
) -> Response:
    deleted, known = await _threaded(_delete, access, body)
    bus = service_state(request).bus
    topic = entity_topic(access.tenant.id)
    for rt_id in deleted:
        if rt_id in known:
            bus.publish(topic, _event(access, UpdateType.DELETE, entity_json(known[rt_id])))
    return _json({"deleted": deleted})
