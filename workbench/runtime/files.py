"""Import and export of runtime entity files (YAML or JSON, CONSTRUCTION_KIT.md format).

Import is all or nothing per file: every entity is validated (attributes, associations,
multiplicities, dependencies of the file against the tenant's libraries) before one atomic batch
is written. An entity whose ``rtId`` already exists is updated: the attributes in the file replace
those stored and the file's associations are added (existing links are kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from workbench.ck.loader import parse_yaml
from workbench.ck.model import CkModel, Dependency
from workbench.ck.references import without_version_suffixes
from workbench.ck.versions import VersionRange
from workbench.errors import ErrorCollector, ValidationError, shown
from workbench.limits import Cancellation, current_cancellation
from workbench.query.model import EntityQuery
from workbench.runtime.entity import AssociationInput, EntityInput, EntityUpdate
from workbench.runtime.service import EntityService
from workbench.runtime.values import externalize_attributes

__all__ = [
    "ImportSummary",
    "export_runtime_file",
    "import_runtime_document",
    "import_runtime_file",
    "load_runtime_text",
    "parse_runtime_document",
]

_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: entities converted or written between two looks at the request's cancellation
EXPORT_CHUNK = 500


class ImportSummary(dict[str, int]):
    """``{"created": n, "updated": m}``."""


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ValidationError(f"runtime file {str(path)!r} does not exist or is not a file")
    return load_runtime_text(path.read_bytes(), repr(str(path)), as_json=path.suffix == ".json")


def load_runtime_text(data: bytes, source: str, *, as_json: bool) -> Any:
    """The document of a runtime file's bytes (UTF-8 JSON or YAML); ``source`` names it in
    errors (a file name, never a server path the caller did not give)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"runtime file {source} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    try:
        if as_json:
            return json.loads(text)
        return parse_yaml(text)  # YAML 1.2 booleans: an enum value On stays "On"
    except (ValueError, yaml.YAMLError) as exc:
        reason = str(exc)
        if len(reason) > 500:
            reason = reason[:500] + "..."
        raise ValidationError(f"runtime file {source} is not valid YAML/JSON: {reason}") from None


def parse_runtime_document(
    document: Any, source: str
) -> tuple[list[Dependency], list[dict[str, Any]]]:
    """Check the shape of a runtime document; return its dependencies and entity entries."""
    if not isinstance(document, dict) or not isinstance(document.get("entities"), list):
        raise ValidationError(
            f"{source}: a runtime file is a mapping with an 'entities' list "
            "(and optionally 'dependencies')"
        )
    unknown = set(document) - {"dependencies", "entities", "$schema"}
    if unknown:
        raise ValidationError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "expected 'dependencies' and 'entities'"
        )
    dependencies = []
    for raw in document.get("dependencies") or []:
        name, _, spec = str(raw).rpartition("-")
        if not name:  # a bare library name: any version, as in libraries
            dependencies.append(Dependency(str(raw).strip(), VersionRange(text="*")))
            continue
        dependencies.append(Dependency(name, VersionRange.parse(spec)))
    return dependencies, document["entities"]


def _check_dependencies(model: CkModel, dependencies: list[Dependency], source: str) -> None:
    errors = ErrorCollector()
    for dependency in dependencies:
        library = model.libraries.get(dependency.name)
        if library is None:
            errors.add(
                f"the file needs library {dependency}, which this tenant has not imported; "
                "import it first (workbench ck import)",
                source,
            )
        elif not dependency.range.contains(library.version):
            errors.add(
                f"the file needs {dependency} but the tenant has {library.model_id}",
                source,
            )
    errors.raise_if_any(ValidationError, "nothing was imported: dependencies are not satisfied")


def import_runtime_file(
    service: EntityService, model: CkModel, path: Path, *, progress: bool = False
) -> ImportSummary:
    """Import one runtime file into the tenant behind ``service``; all or nothing."""
    return import_runtime_document(
        service, model, _read(path), str(path), path.name, progress=progress
    )


def import_runtime_document(
    service: EntityService,
    model: CkModel,
    document: Any,
    source: str,
    name: str,
    *,
    progress: bool = False,
) -> ImportSummary:
    """Import one runtime document (a parsed file) into the tenant behind ``service``; all or
    nothing. ``source`` names the document in errors, ``name`` prefixes entity locations."""
    dependencies, entries = parse_runtime_document(document, source)
    _check_dependencies(model, dependencies, source)
    errors = ErrorCollector()
    ids = [str(e["rtId"]).lower() for e in entries if isinstance(e, dict) and e.get("rtId")]
    existing = service.store.get_many(ids, include_archived=False) if ids else {}
    creates: list[EntityInput] = []
    updates: list[EntityUpdate] = []
    with _progress(progress, len(entries), f"checking {name}") as advance:
        for index, entry in enumerate(entries):
            location = f"{name}: entities[{index}]"
            parsed = _parse_entry(_with_model_ids(entry, model), location, errors)
            advance()
            if parsed is None:
                continue
            attributes, links = parsed
            rt_id = str(entry.get("rtId") or "").lower() or None
            ck_type_id = _model_id(model, str(entry["ckTypeId"]))
            if rt_id and rt_id in existing:
                if existing[rt_id].ck_type_id != ck_type_id:
                    errors.add(
                        f"rtId {rt_id} exists as a {existing[rt_id].ck_type_id}, the file says "
                        f"{entry['ckTypeId']}; the type of an entity cannot change on import",
                        location,
                    )
                    continue
                known = {(a.role_id, a.target_rt_id) for a in service.links([rt_id])}
                new_links = [a for a in links if (a.role, a.target_rt_id.lower()) not in known]
                updates.append(
                    EntityUpdate(
                        rt_id,
                        attributes,
                        rt_well_known_name=entry.get("rtWellKnownName"),
                        add_associations=new_links,
                        keyed_by="id",
                    )
                )
            else:
                creates.append(
                    EntityInput(
                        ck_type_id=ck_type_id,
                        attributes=attributes,
                        rt_id=rt_id,
                        rt_well_known_name=entry.get("rtWellKnownName"),
                        associations=links,
                        keyed_by="id",
                    )
                )
    errors.raise_if_any(ValidationError, f"nothing was imported from {name}")
    service.apply(creates=creates, updates=updates, return_entities=False)
    return ImportSummary(created=len(creates), updated=len(updates))


def _model_id(model: CkModel, element_id: str) -> str:
    """``element_id`` as the model knows it: ``System/Name-1`` (a versioned id, as newer
    exported files write them) reads as ``System/Name`` unless the model declares it as written."""
    known = (model.types, model.attributes, model.roles, model.records)
    if any(element_id in elements for elements in known):
        return element_id
    stripped = without_version_suffixes(element_id)
    return stripped if any(stripped in elements for elements in known) else element_id


def _with_model_ids(entry: Any, model: CkModel) -> Any:
    """A copy of an entity entry whose type, attribute, record and role ids are model ids."""
    if not isinstance(entry, dict):
        return entry
    out = dict(entry)
    for key in ("ckTypeId", "ckRecordId", "roleId", "targetCkTypeId"):
        if isinstance(out.get(key), str):
            out[key] = _model_id(model, out[key])
    if isinstance(out.get("attributes"), list):
        out["attributes"] = [_with_model_attribute(item, model) for item in out["attributes"]]
    if isinstance(out.get("associations"), list):
        out["associations"] = [_with_model_ids(item, model) for item in out["associations"]]
    return out


def _with_model_attribute(item: Any, model: CkModel) -> Any:
    if not isinstance(item, dict):
        return item
    out = dict(item)
    if isinstance(out.get("id"), str):
        out["id"] = _model_id(model, out["id"])
    value = out.get("value")
    if isinstance(value, dict):
        out["value"] = _with_model_ids(value, model)
    elif isinstance(value, list):
        out["value"] = [_with_model_ids(v, model) if isinstance(v, dict) else v for v in value]
    return out


def _parse_entry(
    entry: Any, location: str, errors: ErrorCollector
) -> tuple[dict[str, Any], list[AssociationInput]] | None:
    if not isinstance(entry, dict) or "ckTypeId" not in entry:
        errors.add("an entity is a mapping with at least 'ckTypeId'", location)
        return None
    unknown = set(entry) - {"rtId", "ckTypeId", "rtWellKnownName", "attributes", "associations"}
    if unknown:
        errors.add(f"unknown key(s) {', '.join(sorted(unknown))} in entity", location)
        return None
    attributes: dict[str, Any] = {}
    for item in entry.get("attributes") or []:
        if not isinstance(item, dict) or "id" not in item:
            errors.add(f"attribute entry {shown(item)} needs 'id' and 'value'", location)
            return None
        attributes[str(item["id"])] = item.get("value")
    links = []
    for item in entry.get("associations") or []:
        if not isinstance(item, dict) or "roleId" not in item or "targetRtId" not in item:
            errors.add(f"association entry {shown(item)} needs 'roleId' and 'targetRtId'", location)
            return None
        links.append(
            AssociationInput(
                str(item["roleId"]), str(item["targetRtId"]), item.get("targetCkTypeId")
            )
        )
    return attributes, links


def export_runtime_file(
    service: EntityService,
    model: CkModel,
    path: Path,
    *,
    ck_type_id: str | None = None,
    include_archived: bool = False,
) -> int:
    """Write the tenant's entities (of ``ck_type_id`` and subtypes, or all) to ``path``
    (``.json`` for JSON, YAML otherwise); returns the number of entities written."""
    type_ids = tuple(model.type_and_descendants(ck_type_id)) if ck_type_id else None
    page = service.store.find(
        EntityQuery(type_ids=type_ids, include_archived=include_archived, first=None)
    )
    links = service.store.associations([e.rt_id for e in page.items], "outbound")
    by_source: dict[str, list[dict[str, str]]] = {}
    for link in links:
        by_source.setdefault(link.source_rt_id, []).append(
            {
                "roleId": link.role_id,
                "targetRtId": link.target_rt_id,
                "targetCkTypeId": link.target_ck_type_id,
            }
        )
    cancellation = current_cancellation()
    entities = []
    used_libraries: set[str] = set()
    for index, stored in enumerate(page.items):
        if cancellation is not None and index % EXPORT_CHUNK == 0:
            cancellation.check()  # the client went away or the export ran out of time
        ck_type = model.type(stored.ck_type_id)
        used_libraries.add(ck_type.library)
        entry: dict[str, Any] = {"rtId": stored.rt_id, "ckTypeId": stored.ck_type_id}
        if stored.rt_well_known_name:
            entry["rtWellKnownName"] = stored.rt_well_known_name
        entry["attributes"] = externalize_attributes(
            model, ck_type, stored.attributes, keyed_by="id"
        )
        if stored.rt_id in by_source:
            entry["associations"] = by_source[stored.rt_id]
        entities.append(entry)
    dependencies = []
    for name in sorted(used_libraries):
        version = model.libraries[name].version
        dependencies.append(f"{name}-[{version.major}.{version.minor},{version.major + 1}.0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        document = {"dependencies": dependencies, "entities": entities}
        path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    else:
        _write_yaml(path, dependencies, entities, cancellation)
    return len(entities)


def _write_yaml(
    path: Path,
    dependencies: list[str],
    entities: list[dict[str, Any]],
    cancellation: Cancellation | None,
) -> None:
    """The YAML of ``{"dependencies": ..., "entities": ...}``, written a chunk of entities at a
    time (the same text as one dump: block sequences under a key are not indented), so that a
    cancelled export stops between chunks."""

    def dump(data: Any) -> str:
        return str(yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True))

    with path.open("w", encoding="utf-8") as out:
        if not entities:
            out.write(dump({"dependencies": dependencies, "entities": entities}))
            return
        out.write(dump({"dependencies": dependencies}))
        out.write("entities:\n")
        for start in range(0, len(entities), EXPORT_CHUNK):
            if cancellation is not None:
                cancellation.check()
            out.write(dump(entities[start : start + EXPORT_CHUNK]))


@contextmanager
def _progress(enabled: bool, total: int, label: str) -> Iterator[Any]:
    if not enabled or total < 1000:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
