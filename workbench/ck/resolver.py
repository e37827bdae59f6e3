"""Dependency resolution and model resolution: from loaded libraries to one :class:`CkModel`.

:func:`select_versions` picks one version per library name (the highest inside every requested
range, transitively); :func:`resolve_model` merges a consistent set of libraries, links every
reference, flattens inheritance and validates the result (see :mod:`workbench.ck.validation`).
Libraries are never modified: the model holds its own copies of types and records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from workbench.ck.model import (
    CkAttribute,
    CkLibrary,
    CkModel,
    CkRecord,
    CkType,
    Dependency,
    TypeAttribute,
)
from workbench.ck.platform import (
    absent_platform_libraries,
    dependency_warning,
    is_platform_library,
    leave_out_absent,
)
from workbench.ck.system import ROOT_TYPE_ID, SYSTEM_LIBRARY_NAME, builtin_libraries
from workbench.ck.validation import validate_model
from workbench.ck.versions import VersionRange
from workbench.errors import ErrorCollector, ModelError

__all__ = ["resolve_model", "select_versions"]

_REQUESTED = "the request"


def select_versions(
    requested: Sequence[Dependency | CkLibrary], available: Mapping[str, Sequence[CkLibrary]]
) -> list[CkLibrary]:
    """Choose one library version per name so that every dependency range is satisfied.

    ``requested`` holds dependencies (``Basic-[2.0,3.0)``) or libraries to import as they are;
    ``available`` maps library names to the versions on offer (the built-in System library is
    offered when no System is). Each name gets the highest available version inside all ranges
    that apply to it, transitively. Return the libraries dependencies first. Raise
    :class:`ModelError` for a missing library, an unsatisfiable range, two dependents asking for
    disjoint ranges, or a dependency cycle.
    """
    offered: dict[str, list[CkLibrary]] = {name: list(libs) for name, libs in available.items()}
    for builtin in builtin_libraries():
        offered.setdefault(builtin.name, [builtin])
    roots: list[tuple[str, VersionRange, str]] = []
    for item in requested:
        if isinstance(item, CkLibrary):
            versions = offered.setdefault(item.name, [])
            if all(lib.version != item.version for lib in versions):
                versions.append(item)
            roots.append((item.name, VersionRange.exactly(item.version), _REQUESTED))
        else:
            roots.append((item.name, item.range, _REQUESTED))
    chosen: dict[str, CkLibrary] = {}
    # Fixed-point iteration: recompute the constraints from the current choice until stable.
    for _ in range(100):
        constraints: dict[str, list[tuple[VersionRange, str]]] = {}
        for name, version_range, requirer in roots:
            constraints.setdefault(name, []).append((version_range, requirer))
        for lib in chosen.values():
            for dep in lib.dependencies:
                constraints.setdefault(dep.name, []).append((dep.range, lib.model_id))
        errors = ErrorCollector()
        new_choice = {}
        for name, ranges in constraints.items():
            picked = _pick(name, ranges, offered.get(name, []), errors)
            if picked is not None:
                new_choice[name] = picked
        errors.raise_if_any(ModelError, "cannot choose library versions")
        if {n: lib.version for n, lib in new_choice.items()} == {
            n: lib.version for n, lib in chosen.items()
        }:
            break
        chosen = new_choice
    else:
        raise ModelError("cannot choose library versions: the dependency ranges never settle")
    return _dependencies_first(list(chosen.values()))


def _pick(
    name: str,
    ranges: list[tuple[VersionRange, str]],
    versions: Sequence[CkLibrary],
    errors: ErrorCollector,
) -> CkLibrary | None:
    listed = ", ".join(str(v) for v in sorted(lib.version for lib in versions))
    if not versions and is_platform_library(name):
        return None  # accepted with a warning by resolve_model (see workbench.ck.platform)
    if not versions:
        for version_range, requirer in ranges:
            errors.add(
                f"{requirer} depends on {name}-{version_range} but no library {name} is "
                "available; import it first",
                element=requirer,
            )
        return None
    fitting = [lib for lib in versions if all(r.contains(lib.version) for r, _ in ranges)]
    if fitting:
        return max(fitting, key=lambda lib: lib.version)
    for version_range, requirer in ranges:
        if not any(version_range.contains(lib.version) for lib in versions):
            errors.add(
                f"{requirer} depends on {name}-{version_range} but only {name} {listed} "
                f"{'is' if len(versions) == 1 else 'are'} available; import a version of {name} "
                f"inside {version_range}",
                element=requirer,
            )
            return None
    for i, (first, first_by) in enumerate(ranges):
        for second, second_by in ranges[i + 1 :]:
            if not any(first.contains(v.version) and second.contains(v.version) for v in versions):
                errors.add(
                    f"{first_by} requires {name}-{first} but {second_by} requires "
                    f"{name}-{second}; no available version of {name} ({listed}) satisfies both",
                    element=name,
                )
                return None
    errors.add(
        f"no available version of {name} ({listed}) satisfies all of: "
        + ", ".join(f"{r} (from {by})" for r, by in ranges),
        element=name,
    )
    return None


def _dependencies_first(libraries: list[CkLibrary]) -> list[CkLibrary]:
    """Order libraries so each comes after its dependencies; raise on a dependency cycle."""
    by_name = {lib.name: lib for lib in sorted(libraries, key=lambda lib: lib.name)}
    ordered: list[CkLibrary] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done" or name not in by_name:
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ModelError(
                "dependency cycle: "
                + " -> ".join(by_name[n].model_id for n in cycle)
                + "; remove one of these dependencies"
            )
        state[name] = "visiting"
        for dep in by_name[name].dependencies:
            visit(dep.name, [*path, name])
        state[name] = "done"
        ordered.append(by_name[name])

    for name in by_name:
        visit(name, [])
    return ordered


def resolve_model(libraries: Iterable[CkLibrary]) -> CkModel:
    """Resolve libraries (one version per name) into a validated :class:`CkModel`.

    System is added when absent. Each library's dependencies must be present in a version inside
    their range. Types get their inherited attributes (base first), associations and indexes,
    ``base_chain`` (up to ``System/Entity``) and direct ``subtypes``; records their inherited
    attributes. All problems are raised together as one :class:`ModelError`.
    """
    libs = list(libraries)
    by_name: dict[str, CkLibrary] = {}
    errors = ErrorCollector()
    for lib in libs:
        if lib.name in by_name and by_name[lib.name] is not lib:
            errors.add(
                f"two versions of {lib.name} ({by_name[lib.name].version} and {lib.version}); "
                "a model holds one version per library, use select_versions() to pick one",
                element=lib.name,
            )
        by_name[lib.name] = lib
    for builtin in builtin_libraries():
        by_name.setdefault(builtin.name, builtin)
    absent = absent_platform_libraries(by_name)
    for lib in by_name.values():
        for dep in lib.dependencies:
            present = by_name.get(dep.name)
            if present is None and dep.name in absent:
                dependency_warning(lib, str(dep), dep.name)
            elif present is None:
                errors.add(
                    f"{lib.model_id} depends on {dep} but no library {dep.name} is available; "
                    "import it first",
                    _where(lib),
                    lib.model_id,
                )
            elif not dep.range.contains(present.version):
                errors.add(
                    f"{lib.model_id} depends on {dep} but the model holds {present.model_id}; "
                    f"import a version of {dep.name} inside {dep.range}",
                    _where(lib),
                    lib.model_id,
                )
    _check_closures(by_name, errors)
    errors.raise_if_any(ModelError, "the libraries do not fit together")
    ordered = _dependencies_first(list(by_name.values()))
    model = _merge(ordered)
    leave_out_absent(model, absent)
    _flatten(model, errors)
    validate_model(model, errors)
    errors.raise_if_any(ModelError, "the construction kit model is invalid")
    return model


def _check_closures(by_name: Mapping[str, CkLibrary], errors: ErrorCollector) -> None:
    """Each library references only itself, System and its dependency closure.

    The closure counts indirect dependencies: published kits derive from types of a library they
    reach only through another (``Industry.Energy`` -> ``Industry.Basic`` -> ``Basic``).
    """
    for lib in by_name.values():
        closure = {lib.name, SYSTEM_LIBRARY_NAME}
        queue = [dep.name for dep in lib.dependencies]
        while queue:
            name = queue.pop()
            if name in closure:
                continue
            closure.add(name)
            if name in by_name:
                queue.extend(dep.name for dep in by_name[name].dependencies)
        for name, (where, element) in sorted(lib.referenced_libraries.items()):
            if name not in closure:
                errors.add(
                    f"refers to library {name}, but {lib.name} does not depend on it, directly "
                    f"or through its dependencies; add a dependency such as {name}-[1.0,2.0) to "
                    "its ckModel.yaml",
                    where,
                    element,
                )


def _where(library: CkLibrary) -> str | None:
    """The file or folder a library was loaded from, for error messages."""
    return str(library.source) if library.source is not None else None


def _merge(libraries: list[CkLibrary]) -> CkModel:
    model = CkModel()
    for lib in libraries:
        model.libraries[lib.name] = lib
        model.attributes.update(lib.attributes)
        model.enums.update(lib.enums)
        model.roles.update(lib.roles)
    for lib in libraries:
        for record in lib.records.values():
            model.records[record.id] = dataclasses.replace(
                record, own_attributes=_relink(model, record.own_attributes), attributes={}
            )
        for ck_type in lib.types.values():
            base = ck_type.derived_from
            if base is None and ck_type.id != ROOT_TYPE_ID:
                base = ROOT_TYPE_ID
            model.types[ck_type.id] = dataclasses.replace(
                ck_type,
                derived_from=base,
                own_attributes=_relink(model, ck_type.own_attributes),
                own_associations=list(ck_type.own_associations),
                own_indexes=list(ck_type.own_indexes),
                attributes={},
                associations=[],
                indexes=[],
                base_chain=[],
                subtypes=[],
            )
    return model


def _relink(model: CkModel, members: list[TypeAttribute]) -> list[TypeAttribute]:
    """Copies of ``members`` pointing at the model's attribute declarations (when known)."""
    relinked = []
    for member in members:
        declared: CkAttribute = model.attributes.get(member.attribute_id, member.attribute)
        relinked.append(dataclasses.replace(member, attribute=declared))
    return relinked


def _chain(
    start: str,
    parent_of: Mapping[str, str | None],
    what: str,
    errors: ErrorCollector,
    source_file: str | None,
) -> list[str] | None:
    """Ancestors of ``start`` (nearest first), or None on a cycle or an unknown base."""
    chain: list[str] = []
    current = parent_of[start]
    while current is not None:
        if current == start or current in chain:
            cycle = " -> ".join([start, *chain, current])
            errors.add(
                f"inheritance cycle: {cycle}; break it by changing a base {what}",
                source_file,
                start,
            )
            return None
        if current not in parent_of:
            return None  # reported as an unknown reference by validation
        chain.append(current)
        current = parent_of[current]
    return chain


def _flatten(model: CkModel, errors: ErrorCollector) -> None:
    type_parents = {t.id: t.derived_from for t in model.types.values()}
    for ck_type in model.types.values():
        chain = _chain(ck_type.id, type_parents, "type", errors, ck_type.source_file)
        if chain is None:
            _fill_type(ck_type, [ck_type])
            continue
        ck_type.base_chain = chain
        if ck_type.derived_from is not None:
            model.types[ck_type.derived_from].subtypes.append(ck_type.id)
        _fill_type(ck_type, [*(model.types[t] for t in reversed(chain)), ck_type])
    record_parents = {r.id: r.derived_from for r in model.records.values()}
    for record in model.records.values():
        record_chain = _chain(record.id, record_parents, "record", errors, record.source_file)
        lineage = (
            [record]
            if record_chain is None
            else [*(model.records[r] for r in reversed(record_chain)), record]
        )
        record.attributes = _collect_members(lineage)


def _fill_type(ck_type: CkType, lineage: list[CkType]) -> None:
    """Fill the flattened members of ``ck_type`` from its lineage (root first, itself last)."""
    ck_type.attributes = _collect_members(lineage)
    for ancestor in lineage:
        ck_type.associations.extend(ancestor.own_associations)
        ck_type.indexes.extend(ancestor.own_indexes)


def _collect_members(lineage: Sequence[CkType] | Sequence[CkRecord]) -> dict[str, TypeAttribute]:
    """Attributes by name along ``lineage`` (root first); the first declaration of a name wins."""
    members: dict[str, TypeAttribute] = {}
    seen: set[str] = set()
    for ancestor in lineage:
        for member in ancestor.own_attributes:
            # names are case-insensitive; a repeated name is reported by validation
            if member.name.lower() not in seen:
                seen.add(member.name.lower())
                members[member.name] = member
    return members
