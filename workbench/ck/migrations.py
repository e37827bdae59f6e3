"""Library migrations: parsing the ``migrations/`` folder, choosing a chain, applying steps.

Folder layout (inside the library folder)::

    migrations/
      migrations.yaml        # migrations: [{fromVersion, toVersion, scriptPath, breaking}]
      1.0.0-to-2.0.0.yaml    # steps: [...]; scriptPath is relative to migrations/

A script is a mapping with ``steps`` (and an optional ``description``). Each step is a mapping with
``action`` and the parameters below; every step may carry ``description``. Attribute parameters
are attribute *names* as declared on the type (``Voltage``, ``State``); a dotted path
(``PhaseL1.Voltage``) reaches into a nested record. ``ckTypeId`` is a reference (``${this}/X``)
and limits the step to entities of that type (or a subtype, see :func:`apply_steps`); without it
the step applies to every entity of the library's tenant data being migrated.

=================  ==========================  ===========================================
action             required                    optional
=================  ==========================  ===========================================
RenameAttribute    ``from``, ``to``            ``ckTypeId``
ChangeCkType       ``ckTypeId``, ``to``        —  (``to`` is the new type, a reference)
SetValue           ``attribute``, ``value``    ``ckTypeId``, ``onlyIfMissing`` (false)
MapValue           ``attribute``, ``map``      ``ckTypeId``, ``default``
CopyAttribute      ``from``, ``to``            ``ckTypeId``
DeleteAttribute    ``attribute``               ``ckTypeId``
=================  ==========================  ===========================================

A compiled library file carries the same information inline as
``migrations: [{fromVersion, toVersion, breaking, scriptPath, steps: [...]}]``.
"""

from __future__ import annotations

import copy
import itertools
import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.ck.model import CkLibrary, Migration, MigrationStep
from workbench.ck.references import resolve_reference
from workbench.ck.versions import Version
from workbench.errors import ErrorCollector, ModelError, ValidationError

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

#: File names (inside ``migrations/``) of the meta file listing the migrations.
MIGRATION_META_FILES = ("migrations.yaml", "migrations.yml")


@dataclass(frozen=True)
class StepSpec:
    """The parameters of one step action; ``references`` are resolved to full type ids."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


#: Every step action and its parameters (see the module docstring for their meaning).
STEP_ACTIONS: dict[str, StepSpec] = {
    "RenameAttribute": StepSpec(("from", "to"), ("ckTypeId",), ("ckTypeId",)),
    "ChangeCkType": StepSpec(("ckTypeId", "to"), (), ("ckTypeId", "to")),
    "SetValue": StepSpec(("attribute", "value"), ("ckTypeId", "onlyIfMissing"), ("ckTypeId",)),
    "MapValue": StepSpec(("attribute", "map"), ("ckTypeId", "default"), ("ckTypeId",)),
    "CopyAttribute": StepSpec(("from", "to"), ("ckTypeId",), ("ckTypeId",)),
    "DeleteAttribute": StepSpec(("attribute",), ("ckTypeId",), ("ckTypeId",)),
}
_PATH_PARAMS = ("from", "attribute")
_META_KEYS = {"fromVersion", "toVersion", "scriptPath", "breaking", "description"}


def parse_steps(
    raw_steps: Any, library_name: str, location: str, errors: ErrorCollector
) -> list[MigrationStep]:
    """Validate a script's ``steps`` list; problems go to ``errors`` naming file and step index."""
    if not isinstance(raw_steps, list):
        errors.add("'steps' must be a list of steps", location, "steps")
        return []
    steps = []
    for index, raw in enumerate(raw_steps):
        element = f"step {index}"
        if not isinstance(raw, Mapping):
            errors.add(f"a step must be a mapping with 'action', not {raw!r}", location, element)
            continue
        action = raw.get("action")
        spec = STEP_ACTIONS.get(action) if isinstance(action, str) else None
        if spec is None or not isinstance(action, str):
            errors.add(
                f"unknown action {action!r}; use one of: {', '.join(STEP_ACTIONS)}",
                location,
                element,
            )
            continue
        element = f"step {index} ({action})"
        step_errors = len(errors.details)
        allowed = {"action", "description", *spec.required, *spec.optional}
        for key in raw:
            if key not in allowed:
                errors.add(
                    f"unknown parameter {key!r} for {action}; "
                    f"allowed: {', '.join(sorted(allowed - {'action'}))}",
                    location,
                    element,
                )
        for key in spec.required:
            if key not in raw:
                errors.add(f"missing parameter {key!r} for {action}", location, element)
        params: dict[str, Any] = {k: copy.deepcopy(v) for k, v in raw.items() if k != "action"}
        params.pop("description", None)
        for key in spec.references:
            if key in params:
                try:
                    params[key] = resolve_reference(params[key], library_name)
                except ModelError as exc:
                    errors.add(f"parameter {key!r}: {exc.message}", location, element)
        for key in (*_PATH_PARAMS, "to"):
            if key in params and key not in spec.references and not _is_path(params[key]):
                errors.add(
                    f"parameter {key!r} must be an attribute name such as Voltage "
                    f"(or a dotted path such as PhaseL1.Voltage), not {params[key]!r}",
                    location,
                    element,
                )
        if "map" in params and not isinstance(params["map"], Mapping):
            errors.add("parameter 'map' must be a mapping of old value to new", location, element)
        if "onlyIfMissing" in params and not isinstance(params["onlyIfMissing"], bool):
            errors.add("parameter 'onlyIfMissing' must be true or false", location, element)
        if len(errors.details) == step_errors:
            steps.append(MigrationStep(action=action, params=params))
    return steps


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and all(part.strip() for part in value.split("."))


def _parse_entry(
    entry: Any, location: str, errors: ErrorCollector, extra_keys: Collection[str] = ()
) -> tuple[Version, Version, bool] | None:
    if not isinstance(entry, Mapping):
        errors.add(f"a migration must be a mapping, not {entry!r}", location, "migrations")
        return None
    element = f"migration {entry.get('fromVersion')} -> {entry.get('toVersion')}"
    before = len(errors.details)
    for key in entry:
        if key not in _META_KEYS and key not in extra_keys:
            allowed = ", ".join(sorted({*_META_KEYS, *extra_keys}))
            errors.add(f"unknown key {key!r}; allowed: {allowed}", location, element)
    versions = []
    for key in ("fromVersion", "toVersion"):
        try:
            versions.append(Version.parse(entry.get(key)))
        except ValidationError as exc:
            errors.add(f"{key}: {exc.message}", location, element)
    breaking = entry.get("breaking", False)
    if not isinstance(breaking, bool):
        errors.add("'breaking' must be true or false", location, element)
    if len(versions) == 2 and versions[0] >= versions[1]:
        errors.add("fromVersion must be lower than toVersion", location, element)
    if len(errors.details) != before:
        return None
    return versions[0], versions[1], bool(breaking)


def parse_migration_documents(
    documents: Sequence[tuple[str, Any]],
    library_name: str,
    errors: ErrorCollector,
    location: Callable[[str], str] = str,
) -> tuple[list[Migration], list[dict[str, Any]]]:
    """Parse the documents of a ``migrations/`` folder (names relative to that folder).

    Return the migrations and their compiled form (inline ``steps``). ``location`` maps a document
    name to the label used in error messages.
    """
    by_name = {posixpath.normpath(name): content for name, content in documents}
    meta_name = next((n for n in MIGRATION_META_FILES if n in by_name), None)
    if meta_name is None:
        if by_name:
            errors.add(
                f"migration scripts found but no {MIGRATION_META_FILES[0]} lists them; add one "
                "with entries {fromVersion, toVersion, scriptPath, breaking}",
                location(next(iter(by_name))),
                "migrations",
            )
        return [], []
    meta = by_name[meta_name]
    meta_location = location(meta_name)
    entries = meta.get("migrations") if isinstance(meta, Mapping) else meta
    if isinstance(meta, Mapping) and set(meta) - {"migrations", "$schema"}:
        unknown = sorted(set(meta) - {"migrations", "$schema"})
        errors.add(f"unknown keys {unknown}; expected only 'migrations'", meta_location, None)
    if not isinstance(entries, list):
        errors.add("expected 'migrations:' with a list of migrations", meta_location, None)
        return [], []
    migrations: list[Migration] = []
    compiled: list[dict[str, Any]] = []
    used = {meta_name}
    for entry in entries:
        parsed = _parse_entry(entry, meta_location, errors)
        if parsed is None:
            continue
        script_path = entry.get("scriptPath")
        element = f"migration {parsed[0]} -> {parsed[1]}"
        if not isinstance(script_path, str):
            errors.add(
                "missing 'scriptPath' (the script file, relative to migrations/)",
                meta_location,
                element,
            )
            continue
        script_name = posixpath.normpath(script_path)
        used.add(script_name)
        script = by_name.get(script_name)
        if script is None:
            errors.add(f"script {script_path!r} does not exist", meta_location, element)
            continue
        if not isinstance(script, Mapping) or set(script) - {"steps", "description", "$schema"}:
            errors.add(
                "a script must be a mapping with 'steps' (and optional 'description')",
                location(script_name),
                None,
            )
            continue
        steps = parse_steps(script.get("steps"), library_name, location(script_name), errors)
        migrations.append(Migration(parsed[0], parsed[1], steps, parsed[2], script_path))
        compiled.append(
            {
                "fromVersion": str(parsed[0]),
                "toVersion": str(parsed[1]),
                "breaking": parsed[2],
                "scriptPath": script_path,
                "steps": copy.deepcopy(script.get("steps")),
            }
        )
    for name in sorted(set(by_name) - used):
        errors.add(
            f"script is not listed in {meta_name}; list it or remove it", location(name), None
        )
    return migrations, compiled


def parse_inline_migrations(
    entries: Any, library_name: str, location: str, errors: ErrorCollector
) -> list[Migration]:
    """Parse the ``migrations`` list of a compiled library file (entries carry ``steps``)."""
    if not isinstance(entries, list):
        errors.add("'migrations' must be a list", location, "migrations")
        return []
    migrations = []
    for entry in entries:
        parsed = _parse_entry(entry, location, errors, extra_keys=("steps",))
        if parsed is None:
            continue
        steps = parse_steps(entry.get("steps"), library_name, location, errors)
        script_path = entry.get("scriptPath")
        migrations.append(
            Migration(parsed[0], parsed[1], steps, parsed[2], script_path if script_path else None)
        )
    return migrations


def migrations_between(
    library: CkLibrary, from_version: Version, to_version: Version
) -> list[Migration]:
    """The migrations of ``library`` to run when data moves from ``from_version`` to ``to_version``.

    A migration is part of the upgrade when its ``toVersion`` lies in ``(from_version,
    to_version]``; they are returned oldest first. Gaps are fine (versions in between need no data
    change); overlapping migrations are ambiguous and raise :class:`ModelError`. Downgrades raise
    :class:`ValidationError`.
    """
    if to_version < from_version:
        raise ValidationError(
            f"cannot migrate {library.name} down from {from_version} to {to_version}; "
            "only upgrades are supported"
        )
    chosen = sorted(
        (m for m in library.migrations if from_version < m.to_version <= to_version),
        key=lambda m: (m.to_version, m.from_version),
    )
    for earlier, later in itertools.pairwise(chosen):
        if later.from_version < earlier.to_version:
            raise ModelError(
                f"{library.model_id}: migrations {earlier.from_version} -> {earlier.to_version} "
                f"and {later.from_version} -> {later.to_version} overlap; make each migration "
                "start where the previous one ends"
            )
    return chosen


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
        params = step.params
        if step.action == "ChangeCkType":
            type_id, bases = params["to"], set()
        elif step.action == "RenameAttribute":
            found, value = _pop(values, params["from"])
            if found:
                _set(values, params["to"], value)
        elif step.action == "CopyAttribute":
            found, value = _get(values, params["from"])
            if found:
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
                mapped = _map_value(current, params["map"], params)
                _set(values, params["attribute"], mapped)
        else:
            raise ModelError(f"unknown migration action {step.action!r}")
    return type_id, values


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
