"""Moving data in and out of a tenant: CK libraries and runtime entities chosen by a filter,
and stream data, as files a second tenant (or a later run) imports.

An export folder holds ``ck/<library>.yaml`` (compiled libraries), ``entities.json`` (the
runtime file format of ``workbench rt export``) and ``manifest.json``; a stream archive holds
one Parquet file per CK type (``streams/<type id with / as __>.parquet``) and ``streams.json``
(so a tenant dump holds both in one folder).
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from workbench.bots.builtin.selection import find_all
from workbench.errors import NotFound, ValidationError

__all__ = [
    "export_runtime",
    "export_selection",
    "export_streams",
    "import_libraries",
    "import_runtime",
    "import_selection",
    "import_streams",
    "stream_types",
]


def export_runtime(
    tenant: Any, path: Path, *, ck_type_id: str | None = None, include_archived: bool = False
) -> int:
    """The tenant's entities (of ``ck_type_id`` and subtypes, or all) as a runtime file."""
    if hasattr(tenant, "_http"):  # a remote tenant: the Asset Repository's runtime export
        from workbench.client.runtime_files import export_remote

        return export_remote(tenant, path, ck_type_id=ck_type_id, include_archived=include_archived)
    from workbench.runtime.files import export_runtime_file

    return export_runtime_file(
        tenant.entities,
        tenant.model,
        path,
        ck_type_id=ck_type_id,
        include_archived=include_archived,
    )


def import_runtime(tenant: Any, path: Path) -> dict[str, int]:
    """Import a runtime file (all or nothing); ``created`` and ``updated`` counts."""
    if hasattr(tenant, "_http"):
        from workbench.client.runtime_files import import_remote

        return import_remote(tenant, path)
    from workbench.runtime.files import import_runtime_file

    summary = import_runtime_file(tenant.entities, tenant.model, path)
    return {"created": int(summary["created"]), "updated": int(summary["updated"])}


def import_libraries(tenant: Any, paths: list[Path]) -> list[str]:
    """Import compiled libraries in an order that satisfies their dependencies."""
    pending = sorted(paths)
    imported: list[str] = []
    while pending:
        failed: list[tuple[Path, Exception]] = []
        for path in pending:
            try:
                imported.append(tenant.ck.import_library(path).model_id)
            except Exception as exc:  # a dependency still to come: try again after the others
                failed.append((path, exc))
        if len(failed) == len(pending):
            raise failed[0][1]
        pending = [path for path, _ in failed]
    return imported


def export_selection(
    tenant: Any,
    target: Path,
    *,
    libraries: list[str] | None = None,
    ck_type_id: str | None = None,
    where: Any = None,
    include_archived: bool = False,
    associations: str = "within",
) -> dict[str, Any]:
    """Write the chosen libraries (default: the tenant's own; ``[]`` for none) and the entities
    of ``ck_type_id`` matching ``where`` (none without ``ck_type_id``) to ``target``.

    ``associations="within"`` keeps only links between exported entities, so the export
    imports into a tenant that lacks the others; ``"all"`` keeps every outbound link."""
    if associations not in ("within", "all"):
        raise ValidationError(f"associations {associations!r}: use 'within' or 'all'")
    if where and not ck_type_id:
        raise ValidationError(
            f"a filter ({where!r}) needs the type it applies to: set ck_type_id as well"
        )
    target.mkdir(parents=True, exist_ok=True)
    own = sorted(tenant.ck.own_libraries())
    chosen = own if libraries is None else list(libraries)
    unknown = sorted(set(chosen) - set(tenant.ck.libraries()))
    if unknown:
        raise NotFound(
            f"library {', '.join(unknown)} is not in tenant {tenant.id!r}; the tenant has "
            f"{', '.join(sorted(tenant.ck.libraries())) or 'none'}"
        )
    (target / "ck").mkdir(exist_ok=True)
    exported = []
    for name in chosen:
        document = tenant.ck.export_library(name)
        (target / "ck" / f"{name}.yaml").write_text(
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        exported.append(document["modelId"])
    entities: list[dict[str, Any]] = []
    dependencies: list[str] = []
    if ck_type_id:
        with tempfile.TemporaryDirectory() as scratch:
            full = Path(scratch) / "all.json"
            export_runtime(tenant, full, ck_type_id=ck_type_id, include_archived=include_archived)
            document = json.loads(full.read_text(encoding="utf-8"))
        dependencies = list(document.get("dependencies") or [])
        entities = list(document.get("entities") or [])
        if where:
            keep = {
                e.rt_id
                for e in find_all(tenant, ck_type_id, where, include_archived=include_archived)
            }
            entities = [e for e in entities if e["rtId"] in keep]
        if associations == "within":
            ids = {e["rtId"] for e in entities}
            for entry in entities:
                links = [a for a in entry.get("associations") or [] if a["targetRtId"] in ids]
                if links:
                    entry["associations"] = links
                else:
                    entry.pop("associations", None)
    (target / "entities.json").write_text(
        json.dumps({"dependencies": dependencies, "entities": entities}, indent=1, default=str),
        encoding="utf-8",
    )
    manifest = {
        "tenant": tenant.id,
        "libraries": exported,
        "ckTypeId": ck_type_id,
        "where": where,
        "entities": len(entities),
        "rtIds": sorted(e["rtId"] for e in entities),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def import_selection(tenant: Any, source: Path) -> dict[str, Any]:
    """Import an export folder: its libraries first, then its entities (existing rtIds are
    updated, the others created)."""
    if not (source / "manifest.json").is_file():
        raise NotFound(
            f"{source} holds no manifest.json; point the import at a folder an export wrote"
        )
    libraries = import_libraries(tenant, list((source / "ck").glob("*.yaml")))
    result = {"created": 0, "updated": 0}
    document = json.loads((source / "entities.json").read_text(encoding="utf-8"))
    if document.get("entities"):
        result = import_runtime(tenant, source / "entities.json")
    return {"libraries": libraries, **result}


def _stream_file(ck_type_id: str) -> str:
    return ck_type_id.replace("/", "__") + ".parquet"


def export_streams(
    tenant: Any,
    target: Path,
    ck_type_ids: list[str],
    *,
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
    rt_ids: list[str] | None = None,
) -> dict[str, int]:
    """Stream points of each type in ``[from_, to)`` (of ``rt_ids``, or all) as Parquet files;
    returns the point count per type."""
    import pyarrow.parquet as pq

    folder = target / "streams"
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for ck_type_id in ck_type_ids:
        table = tenant.streams(ck_type_id).read(from_, to, rt_ids=rt_ids).table
        pq.write_table(table, folder / _stream_file(ck_type_id))
        counts[ck_type_id] = table.num_rows
    manifest = {
        "tenant": tenant.id,
        "from": str(from_) if from_ else None,
        "to": str(to) if to else None,
        "points": counts,
    }
    (target / "streams.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return counts


def stream_types(tenant: Any) -> list[str]:
    """The concrete types of the tenant's own libraries that hold stream data."""
    own = set(tenant.ck.own_libraries())
    return [
        type_id
        for type_id, ck_type in sorted(tenant.model.types.items())
        if not ck_type.is_abstract
        and ck_type.library in own
        and tenant.streams(type_id).read(first=1).table.num_rows
    ]


def import_streams(tenant: Any, source: Path) -> dict[str, int]:
    """Write the points of a stream archive back (a point at an existing rtId and time replaces
    the values it gives); returns the point count per type."""
    import pyarrow.parquet as pq

    manifest_file = source / "streams.json"
    if not manifest_file.is_file():
        raise NotFound(f"{source} holds no streams.json; point it at a stream export folder")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    written: dict[str, int] = {}
    for ck_type_id in manifest["points"]:
        table = pq.read_table(source / "streams" / _stream_file(ck_type_id))
        written[ck_type_id] = tenant.streams(ck_type_id).write(table) if table.num_rows else 0
    return written
