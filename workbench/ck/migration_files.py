"""Parsing library migrations: the ``migrations/`` folder, its scripts and their steps.

Folder layout (inside the library folder)::

    migrations/
      migration-meta.yaml    # ckModelId, migrations: [{fromVersion, toVersion, scriptPath, ...}]
      2.0.0-to-2.1.0.yaml    # sourceVersion, targetVersion, description, steps: [...]

``migrations.yaml`` is accepted as the meta file too; ``scriptPath`` is relative to
``migrations/``; several entries may share one script (entry points from several versions).

A step comes in two forms. The nested form of published kits::

    - stepId: rename-time
      action: Transform
      target: {ckTypeId: Industry.Basic/Event, blueprintSourceOnly: false}
      transform: {type: RenameAttribute, sourceAttribute: Time, targetAttribute: Received}
      onConflict: Skip          # Skip | Overwrite | Fail, when the target attribute exists
      continueOnError: false

and the flat form, where the step itself names the action (``action`` or ``type``) and carries
the parameters. Both become one :class:`MigrationStep` with the flat parameters below
(``sourceAttribute``/``targetAttribute`` read as ``from``/``to``). Attribute parameters are
attribute *names* as declared on the type; a dotted path (``PhaseL1.Voltage``) reaches into a
nested record. ``ckTypeId`` is a reference and limits the step to that type and its subtypes.

=================  ==========================  ===========================================
action             required                    optional
=================  ==========================  ===========================================
RenameAttribute    ``from``, ``to``            ``ckTypeId``, ``onConflict``
ChangeCkType       ``ckTypeId``, ``to``        —  (``to`` is the new type, a reference)
SetValue           ``attribute``, ``value``    ``ckTypeId``, ``onlyIfMissing`` (false)
MapValue           ``attribute``, ``map``      ``ckTypeId``, ``default``
CopyAttribute      ``from``, ``to``            ``ckTypeId``, ``onConflict``
DeleteAttribute    ``attribute``               ``ckTypeId``
=================  ==========================  ===========================================

Every step may also carry ``stepId``, ``description`` and ``continueOnError``. A compiled library
file carries the same information inline: ``migrations: [{fromVersion, toVersion, breaking,
scriptPath, steps: [...]}]``. Unknown keys are warnings (and kept); unknown actions, missing
parameters and bad values are errors.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.ck.findings import Findings
from workbench.ck.model import Migration, MigrationStep
from workbench.ck.references import resolve_reference
from workbench.ck.versions import Version
from workbench.errors import ModelError, ValidationError

__all__ = [
    "CONFLICT_POLICIES",
    "MIGRATION_META_FILES",
    "STEP_ACTIONS",
    "StepSpec",
    "parse_inline_migrations",
    "parse_migration_documents",
    "parse_steps",
]

#: File names (inside ``migrations/``) of the meta file listing the migrations.
MIGRATION_META_FILES = (
    "migration-meta.yaml",
    "migration-meta.yml",
    "migrations.yaml",
    "migrations.yml",
)
#: What a rename or copy does when the target attribute already holds a value.
CONFLICT_POLICIES = ("Skip", "Overwrite", "Fail")


@dataclass(frozen=True)
class StepSpec:
    """The parameters of one step action; ``references`` are resolved to full type ids."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


_COMMON = ("ckTypeId", "stepId", "continueOnError")
#: Every step action and its parameters (see the module docstring for their meaning).
STEP_ACTIONS: dict[str, StepSpec] = {
    "RenameAttribute": StepSpec(("from", "to"), (*_COMMON, "onConflict"), ("ckTypeId",)),
    "ChangeCkType": StepSpec(("ckTypeId", "to"), ("stepId", "continueOnError"), ("ckTypeId", "to")),
    "SetValue": StepSpec(("attribute", "value"), (*_COMMON, "onlyIfMissing"), ("ckTypeId",)),
    "MapValue": StepSpec(("attribute", "map"), (*_COMMON, "default"), ("ckTypeId",)),
    "CopyAttribute": StepSpec(("from", "to"), (*_COMMON, "onConflict"), ("ckTypeId",)),
    "DeleteAttribute": StepSpec(("attribute",), _COMMON, ("ckTypeId",)),
}
#: Spellings of the nested form (and of some flat steps) for the flat parameters.
_ALIASES = {
    "sourceAttribute": "from",
    "targetAttribute": "to",
    "targetCkTypeId": "to",
    "mapping": "map",
    "valueMap": "map",
    "defaultValue": "default",
}
_PATH_PARAMS = ("from", "attribute")
_META_KEYS = {"fromVersion", "toVersion", "scriptPath", "breaking", "description"}
_NESTED_STEP_KEYS = {
    "stepId",
    "description",
    "action",
    "target",
    "transform",
    "onConflict",
    "continueOnError",
}
_TARGET_KEYS = {"ckTypeId", "blueprintSourceOnly"}
_SCRIPT_KEYS = {"steps", "description", "sourceVersion", "targetVersion"}


def _listed(value: Any, key: str, form: str, location: str, findings: Findings) -> list[Any]:
    """``value`` if it is a list; else ``[]``, and an error saying ``key`` must be ``form``."""
    if isinstance(value, list):
        return value
    findings.add(f"'{key}' must be {form}", location, key)
    return []


def parse_steps(
    raw_steps: Any, library_name: str, location: str, findings: Findings
) -> list[MigrationStep]:
    """Validate a script's ``steps`` list; problems go to ``findings`` naming file and step."""
    steps = []
    for index, raw in enumerate(_listed(raw_steps, "steps", "a list of steps", location, findings)):
        before = len(findings.errors.details)
        flat = _flatten_step(raw, index, location, findings)
        if flat is None:
            continue
        action, params, element = flat
        spec = STEP_ACTIONS[action]
        known = {*spec.required, *spec.optional}
        findings.unknown_keys(set(params), f"a {action} step", known, location, element)
        for key in spec.required:
            if key not in params:
                findings.add(f"missing parameter {key!r} for {action}", location, element)
        for key in spec.references:
            if key in params:
                try:
                    params[key] = resolve_reference(params[key], library_name)
                except ModelError as exc:
                    findings.add(f"parameter {key!r}: {exc.message}", location, element)
        _check_values(params, spec, location, element, findings)
        if len(findings.errors.details) == before:
            steps.append(MigrationStep(action=action, params=params))
    return steps


def _flatten_step(
    raw: Any, index: int, location: str, findings: Findings
) -> tuple[str, dict[str, Any], str] | None:
    """``(action, flat parameters, element label)`` of one step in either form."""
    if not isinstance(raw, Mapping):
        findings.add(f"a step must be a mapping, not {raw!r}", location, f"step {index}")
        return None
    label = f"step {index}" + (f" {raw['stepId']!r}" if isinstance(raw.get("stepId"), str) else "")
    if raw.get("action") == "Transform" or "transform" in raw:
        transform, target = raw.get("transform"), raw.get("target") or {}
        if not isinstance(transform, Mapping) or not isinstance(target, Mapping):
            findings.add(
                "a Transform step needs 'transform: {type: RenameAttribute, ...}' and an "
                "optional 'target: {ckTypeId: ...}'",
                location,
                label,
            )
            return None
        findings.unknown_keys(set(raw), "a step", _NESTED_STEP_KEYS, location, label)
        findings.unknown_keys(set(target), "a step target", _TARGET_KEYS, location, label)
        action = transform.get("type")
        params = {k: v for k, v in transform.items() if k != "type"}
        if "ckTypeId" in target:
            params["ckTypeId"] = target["ckTypeId"]
        params.update({k: raw[k] for k in ("stepId", "onConflict", "continueOnError") if k in raw})
    else:
        action = raw.get("action", raw.get("type"))
        params = {k: v for k, v in raw.items() if k not in ("action", "type", "description")}
    if not isinstance(action, str) or action not in STEP_ACTIONS:
        findings.add(
            f"unknown action {action!r}; use one of: {', '.join(STEP_ACTIONS)}", location, label
        )
        return None
    flat = {_ALIASES.get(k, k): copy.deepcopy(v) for k, v in params.items()}
    return action, flat, f"{label} ({action})"


def _check_values(
    params: dict[str, Any], spec: StepSpec, location: str, element: str, findings: Findings
) -> None:
    for key in (*_PATH_PARAMS, "to"):
        if key in params and key not in spec.references and not _is_path(params[key]):
            findings.add(
                f"parameter {key!r} must be an attribute name such as Voltage "
                f"(or a dotted path such as PhaseL1.Voltage), not {params[key]!r}",
                location,
                element,
            )
    if "map" in params and not isinstance(params["map"], Mapping):
        findings.add("parameter 'map' must be a mapping of old value to new", location, element)
    for flag in ("onlyIfMissing", "continueOnError"):
        if flag in params and not isinstance(params[flag], bool):
            findings.add(f"parameter {flag!r} must be true or false", location, element)
    if "onConflict" in params and params["onConflict"] not in CONFLICT_POLICIES:
        findings.add(
            f"onConflict {params['onConflict']!r} is not valid; use one of: "
            f"{' | '.join(CONFLICT_POLICIES)}",
            location,
            element,
        )


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and all(part.strip() for part in value.split("."))


def _parse_entry(
    entry: Any, location: str, findings: Findings, extra_keys: Collection[str] = ()
) -> tuple[Version, Version, bool] | None:
    if not isinstance(entry, Mapping):
        findings.add(f"a migration must be a mapping, not {entry!r}", location, "migrations")
        return None
    element = f"migration {entry.get('fromVersion')} -> {entry.get('toVersion')}"
    before = len(findings.errors.details)
    findings.unknown_keys(set(entry), "a migration", {*_META_KEYS, *extra_keys}, location, element)
    versions = []
    for key in ("fromVersion", "toVersion"):
        try:
            versions.append(Version.parse(entry.get(key)))
        except ValidationError as exc:
            findings.add(f"{key}: {exc.message}", location, element)
    breaking = entry.get("breaking", False)
    if not isinstance(breaking, bool):
        findings.add("'breaking' must be true or false", location, element)
    if len(versions) == 2 and versions[0] >= versions[1]:
        findings.add("fromVersion must be lower than toVersion", location, element)
    if len(findings.errors.details) != before:
        return None
    return versions[0], versions[1], bool(breaking)


def parse_migration_documents(
    documents: Sequence[tuple[str, Any]],
    library_name: str,
    findings: Findings,
    location: Callable[[str], str] = str,
) -> tuple[list[Migration], list[dict[str, Any]]]:
    """Parse the documents of a ``migrations/`` folder (names relative to that folder).

    Return the migrations and their compiled form (inline ``steps``). ``location`` maps a document
    name to the label used in messages.
    """
    by_name = {posixpath.normpath(name): content for name, content in documents}
    meta_name = next((n for n in MIGRATION_META_FILES if n in by_name), None)
    if meta_name is None:
        if by_name:
            findings.add(
                f"migration scripts found but no {MIGRATION_META_FILES[0]} lists them; add one "
                "with entries {fromVersion, toVersion, scriptPath, breaking}",
                location(next(iter(by_name))),
                "migrations",
            )
        return [], []
    meta = by_name[meta_name]
    meta_location = location(meta_name)
    entries = meta.get("migrations") if isinstance(meta, Mapping) else meta
    if isinstance(meta, Mapping):
        known = {"migrations", "ckModelId"}
        findings.unknown_keys(set(meta), "the migration meta file", known, meta_location, None)
    if not isinstance(entries, list):
        findings.add("expected 'migrations:' with a list of migrations", meta_location, None)
        return [], []
    migrations: list[Migration] = []
    compiled: list[dict[str, Any]] = []
    used = {meta_name}
    for entry in entries:
        parsed = _parse_entry(entry, meta_location, findings)
        if parsed is None:
            continue
        script_path = entry.get("scriptPath")
        element = f"migration {parsed[0]} -> {parsed[1]}"
        if not isinstance(script_path, str):
            findings.add(
                "missing 'scriptPath' (the script file, relative to migrations/)",
                meta_location,
                element,
            )
            continue
        script_name = posixpath.normpath(script_path)
        used.add(script_name)
        script = by_name.get(script_name)
        if script is None:
            findings.add(f"script {script_path!r} does not exist", meta_location, element)
            continue
        if not isinstance(script, Mapping):
            findings.add("a script must be a mapping with 'steps'", location(script_name), None)
            continue
        findings.unknown_keys(set(script), "a script", _SCRIPT_KEYS, location(script_name), None)
        steps = parse_steps(script.get("steps"), library_name, location(script_name), findings)
        migrations.append(Migration(parsed[0], parsed[1], steps, parsed[2], script_path))
        compiled_entry = {k: copy.deepcopy(v) for k, v in entry.items()}
        compiled_entry.update(
            {
                "fromVersion": str(parsed[0]),
                "toVersion": str(parsed[1]),
                "breaking": parsed[2],
                "steps": copy.deepcopy(script.get("steps")),
            }
        )
        for key, value in script.items():
            if key not in _SCRIPT_KEYS and key != "$schema":
                compiled_entry.setdefault(key, copy.deepcopy(value))
        compiled.append(compiled_entry)
    for name in sorted(set(by_name) - used):
        findings.warn(
            f"script is not listed in {meta_name} and is not used; list it or remove it",
            location(name),
            None,
        )
    return migrations, compiled


def parse_inline_migrations(
    entries: Any, library_name: str, location: str, findings: Findings
) -> list[Migration]:
    """Parse the ``migrations`` list of a compiled library file (entries carry ``steps``)."""
    migrations = []
    for entry in _listed(entries, "migrations", "a list", location, findings):
        parsed = _parse_entry(entry, location, findings, extra_keys=("steps",))
        if parsed is None:
            continue
        steps = parse_steps(entry.get("steps"), library_name, location, findings)
        script_path = entry.get("scriptPath")
        migrations.append(
            Migration(parsed[0], parsed[1], steps, parsed[2], script_path if script_path else None)
        )
    return migrations
