"""One-element files: a library folder where each file declares one element, named by the file.

Some published kits (``Octo.Energy.Demo``) write ``types/UkDaleHouse.yaml`` as the type itself
(``derivedFrom``, ``attributes: [{attributeName, valueType, isOptional}]``, ``associations:
[{associationRoleId, targetCkTypeId, direction, cardinality}]``), ``attributes/X.yaml`` as
``{valueType, description}``, ``enums/X.yaml`` as ``{values: [{name, value}]}`` and
``associations/X.yaml`` as ``{description, cardinality}``. :func:`expand_element_files` rewrites
such files into the ordinary form (one warning per file), so the rest of the loader, the compiled
form and exports see ordinary element lists. Bare references (``PropertyType``) name the library
itself. A role gets its id as both navigation names; its multiplicities come from the types'
``Outbound`` and ``Inbound`` entries (``cardinality``: ``One``, ``ZeroOrOne`` or ``N``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from workbench.ck.findings import Findings

__all__ = ["expand_element_files"]

_FOLDERS = {
    "types": "types",
    "attributes": "attributes",
    "enums": "enums",
    "associations": "associationRoles",
    "records": "records",
}
_MARKERS = {"derivedFrom", "valueType", "cardinality", "attributeName"}


def _is_element_file(name: str, content: Any) -> bool:
    if not isinstance(content, Mapping) or "modelId" in content:
        return False
    folder = posixpath.basename(posixpath.dirname(name))
    if folder not in _FOLDERS:
        return False
    if set(content) & _MARKERS:
        return True
    if folder == "enums" and "enumId" not in content and isinstance(content.get("values"), list):
        return True
    members = content.get("attributes")
    return isinstance(members, list) and any(
        isinstance(m, Mapping) and "attributeName" in m for m in members
    )


def _ref(value: Any) -> Any:
    """A bare element name (``PropertyType``) is a reference into the library itself."""
    if isinstance(value, str) and "/" not in value:
        return f"${{this}}/{value}"
    return value


def expand_element_files(
    documents: list[tuple[str, Any]], location: Callable[[str], str], findings: Findings
) -> list[tuple[str, Any]]:
    """``documents`` with every one-element file rewritten into an ordinary element file."""
    singles = [(n, c) for n, c in documents if _is_element_file(n, c)]
    if not singles:
        return documents
    single_names = {n for n, _ in singles}
    declared = {
        posixpath.splitext(posixpath.basename(n))[0]
        for n, _ in singles
        if posixpath.basename(posixpath.dirname(n)) == "attributes"
    }
    ends: dict[str, dict[str, str]] = {}
    extra_attributes: list[dict[str, Any]] = []
    converted: dict[str, Any] = {}
    for name, content in singles:
        element_id = posixpath.splitext(posixpath.basename(name))[0]
        kind = _FOLDERS[posixpath.basename(posixpath.dirname(name))]
        findings.warn(
            f"read as a one-element file: {kind[:-1]} {element_id!r} (id from the file name)",
            location(name),
            None,
        )
        if kind == "types":
            entry = _type(element_id, content, declared, extra_attributes, ends)
        elif kind == "enums":
            entry = _enum(element_id, content)
        elif kind == "associationRoles":
            entry = {"id": element_id, **{k: v for k, v in content.items() if k != "cardinality"}}
            ends.setdefault(element_id, {}).setdefault("default", str(content.get("cardinality")))
        else:
            key = "recordId" if kind == "records" else "id"
            entry = {key: element_id, **{k: _ref_keys(k, v) for k, v in content.items()}}
        converted[name] = {kind: [entry]}
    for entries in converted.values():
        for role in entries.get("associationRoles", []):
            multiplicity = ends.get(role["id"], {})
            fallback = _multiplicity(multiplicity.get("default"), "N")
            role.update(
                outboundName=role["id"],
                inboundName=role["id"],
                outboundMultiplicity=_multiplicity(multiplicity.get("Outbound"), fallback),
                inboundMultiplicity=_multiplicity(multiplicity.get("Inbound"), "N"),
            )
    out = [(n, converted[n] if n in single_names else c) for n, c in documents]
    if extra_attributes:
        out.append(("attributes/(declared-on-types).yaml", {"attributes": extra_attributes}))
    return out


def _ref_keys(key: str, value: Any) -> Any:
    return _ref(value) if key in ("valueCkEnumId", "valueCkRecordId") else value


def _multiplicity(value: str | None, fallback: str) -> str:
    return value if value in ("One", "ZeroOrOne", "N") else fallback


def _type(
    type_id: str,
    content: Mapping[str, Any],
    declared: set[str],
    extra_attributes: list[dict[str, Any]],
    ends: dict[str, dict[str, str]],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"typeId": type_id}
    for key, value in content.items():
        if key == "derivedFrom":
            entry["derivedFromCkTypeId"] = _ref(value)
        elif key not in ("attributes", "associations"):
            entry[key] = value
    members = []
    for item in content.get("attributes") or []:
        if not isinstance(item, Mapping) or "attributeName" not in item:
            members.append(item)
            continue
        name = str(item["attributeName"]).strip()
        if name not in declared:
            declared.add(name)
            attribute = {"id": name, "valueType": item.get("valueType", "String")}
            for key in ("valueCkEnumId", "valueCkRecordId"):
                if key in item:
                    attribute[key] = _ref(item[key])
            extra_attributes.append(attribute)
        member = {"id": f"${{this}}/{name}", "name": name}
        member.update(
            {k: item[k] for k in ("isOptional", "defaultValues", "description") if k in item}
        )
        members.append(member)
    if members:
        entry["attributes"] = members
    associations = []
    for item in content.get("associations") or []:
        if not isinstance(item, Mapping) or "associationRoleId" not in item:
            associations.append(item)
            continue
        role = str(item["associationRoleId"])
        direction = str(item.get("direction", "Outbound"))
        ends.setdefault(role, {}).setdefault(direction, str(item.get("cardinality")))
        if direction == "Outbound":
            associations.append(
                {"id": f"${{this}}/{role}", "targetCkTypeId": _ref(item.get("targetCkTypeId"))}
            )
    if associations:
        entry["associations"] = associations
    return entry


def _enum(enum_id: str, content: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"enumId": enum_id}
    entry.update({k: v for k, v in content.items() if k != "values"})
    entry["values"] = [
        {"key": v.get("value", v.get("key")), **{k: x for k, x in v.items() if k != "value"}}
        if isinstance(v, Mapping)
        else v
        for v in content.get("values") or []
    ]
    return entry
