"""Running library migrations: choosing the chain of migrations for an upgrade, applying steps.

Parsing (the ``migrations/`` folder, the two step forms) lives in
:mod:`workbench.ck.migration_files`; its names are re-exported here.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from workbench.ck.migration_files import (
    MIGRATION_META_FILES,
    STEP_ACTIONS,
    StepSpec,
    parse_inline_migrations,
    parse_migration_documents,
    parse_steps,
)
from workbench.ck.model import CkLibrary, Migration, MigrationStep
from workbench.ck.versions import Version
from workbench.errors import ModelError, ValidationError

__all__ = [
    "MIGRATION_META_FILES",
    "STEP_ACTIONS",
    "StepSpec",
    "apply_steps",
    "migrations_between",
    "parse_inline_migrations",
    "parse_migration_documents",
    "parse_steps",
]


def migrations_between(
    library: CkLibrary, from_version: Version, to_version: Version
) -> list[Migration]:
    """The migrations of ``library`` to run when data moves from ``from_version`` to ``to_version``.

    The chain is walked from ``from_version``: the next migration is the one whose
    ``fromVersion`` is the highest not above the current version (an entry point: published kits
    list one entry per released version, all leading to the same script), the smallest step on a
    tie; when none starts at or below it, the next one above (versions in between need no data
    change). Migrations ending above ``to_version`` are not used. Returned oldest first;
    downgrades raise :class:`ValidationError`.
    """
    if to_version < from_version:
        raise ValidationError(
            f"cannot migrate {library.name} down from {from_version} to {to_version}; "
            "only upgrades are supported"
        )
    chain: list[Migration] = []
    current = from_version
    while True:
        ahead = [m for m in library.migrations if current < m.to_version <= to_version]
        if not ahead:
            return chain
        reachable = [m for m in ahead if m.from_version <= current]
        if reachable:
            step = max(reachable, key=lambda m: (m.from_version, _negated(m.to_version)))
        else:
            step = min(ahead, key=lambda m: (m.from_version, m.to_version))
        chain.append(step)
        current = step.to_version


def _negated(version: Version) -> tuple[int, int, int]:
    return (-version.major, -version.minor, -version.patch)


def apply_steps(
    steps: Iterable[MigrationStep],
    entity_type_id: str,
    attributes: Mapping[str, Any],
    *,
    base_type_ids: Collection[str] = (),
) -> tuple[str, dict[str, Any]]:
    """Apply migration steps to one entity; return its new type id and a new attribute dict.

    Pure: ``attributes`` (keyed by attribute name, nested records as dicts) is not modified. A step
    with ``ckTypeId`` applies when the entity's type is that type or, while the type has not been
    changed by a ``ChangeCkType`` step, one of ``base_type_ids`` (the ancestors of the entity's
    type in the model being migrated from). Steps on absent attributes do nothing, except
    ``SetValue`` which creates the value (and intermediate record dicts).
    """
    type_id = entity_type_id
    bases = set(base_type_ids)
    values = copy.deepcopy(dict(attributes))
    for step in steps:
        target = step.params.get("ckTypeId")
        if target is not None and target != type_id and target not in bases:
            continue
        if step.action == "ChangeCkType":
            type_id, bases = step.params["to"], set()
            continue
        try:
            values = _apply_step(step, values)
        except ValidationError:
            if not step.params.get("continueOnError", False):
                raise
    return type_id, values


def _apply_step(step: MigrationStep, values: dict[str, Any]) -> dict[str, Any]:
    """Apply one attribute step to a copy of ``values``; raise ValidationError on a conflict."""
    values = copy.deepcopy(values)
    params = step.params
    if step.action in ("RenameAttribute", "CopyAttribute"):
        found, value = _get(values, params["from"])
        if not found:
            return values
        policy = params.get("onConflict", "Overwrite")
        if _get(values, params["to"])[0] and params["to"] != params["from"]:
            if policy == "Skip":
                return values
            if policy == "Fail":
                raise ValidationError(
                    f"migration step {params.get('stepId') or step.action}: attribute "
                    f"{params['to']!r} already has a value; remove it or use onConflict: Skip"
                )
        if step.action == "RenameAttribute":
            _pop(values, params["from"])
        _set(values, params["to"], copy.deepcopy(value))
    elif step.action == "DeleteAttribute":
        _pop(values, params["attribute"])
    elif step.action == "SetValue":
        found, current = _get(values, params["attribute"])
        if not (params.get("onlyIfMissing", False) and found and current is not None):
            _set(values, params["attribute"], copy.deepcopy(params["value"]))
    elif step.action == "MapValue":
        found, current = _get(values, params["attribute"])
        if found:
            _set(values, params["attribute"], _map_value(current, params["map"], params))
    else:
        raise ModelError(f"unknown migration action {step.action!r}")
    return values


def _map_value(current: Any, mapping: Mapping[Any, Any], params: Mapping[str, Any]) -> Any:
    try:
        if current in mapping:
            return copy.deepcopy(mapping[current])
    except TypeError:  # unhashable values (lists, dicts) are never keys of the map
        pass
    return copy.deepcopy(params["default"]) if "default" in params else current


def _container(
    values: dict[str, Any], path: str, create: bool
) -> tuple[dict[str, Any] | None, str]:
    *parents, leaf = path.split(".")
    node: Any = values
    for part in parents:
        child = node.get(part)
        if child is None and create:
            child = node[part] = {}
        if not isinstance(child, dict):
            return None, leaf
        node = child
    return node, leaf


def _get(values: dict[str, Any], path: str) -> tuple[bool, Any]:
    node, leaf = _container(values, path, create=False)
    if node is None or leaf not in node:
        return False, None
    return True, node[leaf]


def _pop(values: dict[str, Any], path: str) -> tuple[bool, Any]:
    node, leaf = _container(values, path, create=False)
    if node is None or leaf not in node:
        return False, None
    return True, node.pop(leaf)


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _container(values, path, create=True)
    if node is None:
        raise ValidationError(
            f"cannot set attribute {path!r}: a part of the path holds a value that is not a record"
        )
    node[leaf] = value
