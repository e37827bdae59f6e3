"""``RemoteTenant.ck``: the :class:`~workbench.tenancy.catalog.CkCatalog` API over HTTP
(:class:`RemoteCkCatalog`).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from workbench.ck import CkLibrary, CkModel, dump_library, resolve_model
from workbench.ck.loader import load_library_from_documents
from workbench.client.remote_http import TenantHttp
from workbench.errors import (
    NotFound,
)
from workbench.tenancy.catalog import ImportReport

__all__ = ["RemoteCkCatalog"]


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

    def __init__(self, http: TenantHttp, tenant_id: str) -> None:
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
