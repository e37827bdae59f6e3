"""OctoMesh platform libraries that are not installed: accepted, and what refers to them left out.

Published kits depend on libraries that the OctoMesh platform services own, not the kit
repository: ``EnergyCommunity`` depends on ``System.UI-[2.0,3.0)`` and gives its ``Configuration``
type the System.UI attribute ``Theme.Colors``. Those libraries are named ``System.<Something>``
(``System.UI``, ``System.Notification``, ``System.Identity``, ...). Mesh Workbench ships
``System``, ``System.Bot`` and ``System.Communication``; a tenant may import any other one itself.

Being liberal in what we accept, a platform library that is neither built in nor imported does not
stop a kit from loading: the dependency on it is a warning, and every attribute entry and
association that refers to it is left out of the model (the library keeps it, so it is exported
again), each with a warning naming the file, the element and the reference. The model stays right:
it lacks the members it cannot know, it never guesses them. Everything else stays an error: a
reference into a missing platform library that the model cannot do without (a base type, the enum
or record of an attribute), and a missing library that is not a platform library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workbench.ck.model import CkLibrary, CkModel, TypeAssociation, TypeAttribute
from workbench.errors import ErrorDetail

__all__ = [
    "absent_platform_libraries",
    "dependency_warning",
    "is_platform_library",
    "leave_out_absent",
    "note",
]

_PREFIX = "System."


def is_platform_library(name: str) -> bool:
    """True for the name of an OctoMesh platform library: ``System.UI``, ``System.Notification``."""
    return name.startswith(_PREFIX) and len(name) > len(_PREFIX)


def absent_platform_libraries(libraries: Mapping[str, CkLibrary]) -> set[str]:
    """Platform libraries that ``libraries`` depend on or refer to but that are not among them."""
    named: set[str] = set()
    for lib in libraries.values():
        named.update(dep.name for dep in lib.dependencies)
        named.update(lib.referenced_libraries)
    return {name for name in named if name not in libraries and is_platform_library(name)}


def note(library: CkLibrary, message: str, location: str | None, element: str | None) -> None:
    """Add a warning to ``library`` once (a tenant's model is resolved again and again)."""
    detail = ErrorDetail(message, location, element)
    if detail not in library.warnings:
        library.warnings.append(detail)


def _missing(library_name: str) -> str:
    return (
        f"{library_name} is an OctoMesh platform library that is not installed here, so this is "
        f"left out of the model (the library keeps it and exports it again); import "
        f"{library_name} to use it"
    )


def dependency_warning(library: CkLibrary, dependency: str, platform_library: str) -> None:
    """Warn that ``library`` depends on ``platform_library``, which is absent."""
    where = str(library.source) if library.source is not None else None
    note(
        library,
        f"depends on {dependency}, an OctoMesh platform library that is not installed here: "
        f"accepted, and what refers to {platform_library} is left out of the model (the library "
        f"keeps it and exports it again); import {platform_library} to use it",
        where,
        library.model_id,
    )


def leave_out_absent(model: CkModel, absent: set[str]) -> None:
    """Drop from the merged ``model`` the type and record members that refer to ``absent``
    libraries, with a warning on the library that declares each."""
    if not absent:
        return

    def gone(element_id: str) -> str | None:
        library = element_id.rpartition("/")[0]
        return library if library in absent else None

    def keep(
        items: list[Any],
        owner: str,
        where: str | None,
        refers: Callable[[Any], tuple[str | None, str]],
    ) -> list[Any]:
        """``items`` without those ``refers`` finds in an absent library (each one noted)."""
        kept = []
        for item in items:
            library, described = refers(item)
            if library is None:
                kept.append(item)
                continue
            lib = model.libraries[owner.rpartition("/")[0]]
            note(lib, f"{described}: {_missing(library)}", where, owner)
        return kept

    def member(m: TypeAttribute) -> tuple[str | None, str]:
        return gone(m.attribute_id), f"attribute {m.name!r} ({m.attribute_id})"

    def association(a: TypeAssociation) -> tuple[str | None, str]:
        return (
            gone(a.role_id) or gone(a.target_type_id),
            f"association {a.role_id} to {a.target_type_id}",
        )

    for record in model.records.values():
        record.own_attributes = keep(record.own_attributes, record.id, record.source_file, member)
    for ck_type in model.types.values():
        ck_type.own_attributes = keep(
            ck_type.own_attributes, ck_type.id, ck_type.source_file, member
        )
        ck_type.own_associations = keep(
            ck_type.own_associations, ck_type.id, ck_type.source_file, association
        )
