"""REST endpoints for whole files under ``/tenants/{tenantId}/``: CK libraries (``/ck/...``) and
runtime entity files (``/runtime/import``, ``/runtime/export``), as YAML, JSON or zip.

Part of :mod:`.rest`, which mounts the router; every handler does its work in
a worker thread (the stores are synchronous).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workbench.ck import CkLibrary
from workbench.ck.loader import load_library_from_documents, parse_yaml
from workbench.ck.model import CkModel
from workbench.errors import NotFound, ValidationError
from workbench.runtime.files import export_runtime_file, import_runtime_document, load_runtime_text
from workbench.services.access import (
    CkImportAccess,
    EntityWriteAccess,
    ReadAccess,
    TenantAccess,
)
from workbench.services.asset_repository.heavy_request import heavy_request

__all__ = ["router"]

#: the largest CK upload accepted (zip expanded or YAML), in bytes
MAX_LIBRARY_BYTES = 64 * 2**20
#: the largest runtime file accepted, in bytes
MAX_RUNTIME_BYTES = 512 * 2**20

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
ZIP_TYPES = {"application/zip", "application/x-zip-compressed"}

router = APIRouter(prefix="/tenants/{tenantId}")


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
    summaries = await run_in_threadpool(_library_summaries, access, compiled)
    stamp = await run_in_threadpool(access.tenant.ck.stamp)
    return JSONResponse(summaries, headers={"X-Workbench-Ck-Stamp": json.dumps(list(stamp))})


@router.get("/ck/stamp", tags=["construction kit"], summary="Model generation (changes on import)")
async def ck_stamp(access: ReadAccess) -> dict[str, list[int]]:
    return {"stamp": list(await run_in_threadpool(access.tenant.ck.stamp))}


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
    library = await run_in_threadpool(_library_from_upload, files)
    report = await run_in_threadpool(access.tenant.ck.import_library, library)
    return JSONResponse(report.to_dict(), 200 if report.unchanged else 201)


@router.post(
    "/ck/validate",
    tags=["construction kit"],
    summary="Check a library against the tenant's model without importing it",
)
async def validate_library(request: Request, access: ReadAccess) -> dict[str, Any]:
    from workbench.ck.loader import dump_library

    files = await _uploads(request, MAX_LIBRARY_BYTES)
    library = await run_in_threadpool(_library_from_upload, files)
    model: CkModel = await run_in_threadpool(access.tenant.ck.validate, library)
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
    data = await run_in_threadpool(access.tenant.ck.export_library, modelId)
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
    return await run_in_threadpool(_import_runtime, access, files)


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
    with heavy_request(access, "this runtime export", timeout=True):
        data, count = await run_in_threadpool(
            _export_runtime, access, ckTypeId, includeArchived, as_json
        )
    media = "application/json" if as_json else "application/yaml"
    return Response(data, media_type=media, headers={"X-Workbench-Entity-Count": str(count)})
