"""A tenant's Construction Kit catalog: the libraries imported into it, and its resolved model.

Libraries are stored (in their compiled YAML form) in the tenant's entity store, so the model
travels with the tenant's data and every process sees the same one. A generation counter, bumped
in the same atomic batch as every library change, lets each process notice a change made by
another (CLI, API, notebook) and re-resolve. A child tenant sees its ancestors' libraries; its own
library of the same name takes precedence for the child.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.ck import (
    CkLibrary,
    CkModel,
    apply_steps,
    dump_library,
    load_library,
    load_library_from_documents,
    migrations_between,
    resolve_model,
    select_versions,
    system_library,
)
from workbench.ck.model import Dependency
from workbench.ck.versions import VersionRange, parse_model_id
from workbench.errors import ModelError, NotFound, ValidationError
from workbench.query.model import EntityQuery
from workbench.storage.base import EntityStore, MetaWrite, StoredEntity, WriteBatch

__all__ = ["CkCatalog", "ImportReport", "index_specs", "one_model_stamp"]

#: catalog -> the stamp it read in the current unit of work (see :func:`one_model_stamp`)
_STAMPS: ContextVar[dict[int, tuple[int, ...]] | None] = ContextVar("ck_stamps", default=None)


@contextmanager
def one_model_stamp() -> Iterator[None]:
    """Within the block each catalog reads its stamp once: one unit of work (a GraphQL request)
    sees one model, and its several model look-ups cost one read of the generation counters."""
    token = _STAMPS.set({})
    try:
        yield
    finally:
        _STAMPS.reset(token)


_LIBRARIES = "ck.libraries"
_STATE = "ck.state"
_MIGRATIONS = "ck.migrations"


@dataclass
class ImportReport:
    """What an import changed in the tenant's model."""

    model_id: str
    previous_model_id: str | None = None
    added_types: list[str] = field(default_factory=list)
    changed_types: list[str] = field(default_factory=list)
    removed_types: list[str] = field(default_factory=list)
    migrated_entities: int = 0
    unchanged: bool = False

    def record_changes(self, old: CkModel, new: CkModel) -> None:
        """Fill the added, removed and changed (attributes differ) types from ``old`` to
        ``new``."""
        self.added_types = sorted(t for t in new.types if t not in old.types)
        self.removed_types = sorted(t for t in old.types if t not in new.types)
        self.changed_types = sorted(
            t
            for t in new.types
            if t in old.types
            and {(a.name, a.attribute_id, a.is_optional) for a in new.types[t].attributes.values()}
            != {(a.name, a.attribute_id, a.is_optional) for a in old.types[t].attributes.values()}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "previousModelId": self.previous_model_id,
            "addedTypes": self.added_types,
            "changedTypes": self.changed_types,
            "removedTypes": self.removed_types,
            "migratedEntities": self.migrated_entities,
            "unchanged": self.unchanged,
        }


class CkCatalog:
    """Import, list and resolve the CK libraries of one tenant."""

    def __init__(
        self,
        tenant_id: str,
        store: EntityStore,
        ancestors: Callable[[], Sequence[CkCatalog]] = tuple,
    ) -> None:
        self.tenant_id = tenant_id
        self._store = store
        self._ancestors = ancestors
        self._lock = threading.Lock()
        self._own: tuple[int, dict[str, CkLibrary]] | None = None
        self._model: tuple[tuple[int, ...], CkModel] | None = None

    # ---- reading -----------------------------------------------------------------------------

    def generation(self) -> int:
        doc = self._store.get_meta(_STATE, "generation")
        return int(doc["generation"]) if doc else 0

    def stamp(self) -> tuple[int, ...]:
        """Changes whenever this tenant's or an ancestor's libraries change (read once per
        :func:`one_model_stamp` block)."""
        memo = _STAMPS.get()
        if memo is not None:
            stamp = memo.get(id(self))
            if stamp is None:
                stamp = memo[id(self)] = self._read_stamp()
            return stamp
        return self._read_stamp()

    def _read_stamp(self) -> tuple[int, ...]:
        return (self.generation(), *(a.generation() for a in self._ancestors()))

    def own_libraries(self) -> dict[str, CkLibrary]:
        """The libraries imported into this tenant itself, by name."""
        generation = self.generation()
        with self._lock:
            if self._own is not None and self._own[0] == generation:
                return self._own[1]
        docs = self._store.list_meta(_LIBRARIES)
        libraries = {
            name: load_library_from_documents([(f"{self.tenant_id}:{name}", doc["library"])])
            for name, doc in docs.items()
        }
        with self._lock:
            self._own = (generation, libraries)
        return libraries

    def libraries(self) -> dict[str, CkLibrary]:
        """Every library this tenant sees: its ancestors' (nearest wins), then its own."""
        visible: dict[str, CkLibrary] = {}
        for ancestor in reversed(list(self._ancestors())):
            visible.update(ancestor.own_libraries())
        visible.update(self.own_libraries())
        return visible

    def model(self) -> CkModel:
        """The resolved model (cached; re-resolved when any process changed the libraries)."""
        stamp = self.stamp()
        with self._lock:
            if self._model is not None and self._model[0] == stamp:
                return self._model[1]
        model = resolve_model(list(self.libraries().values()) or [system_library()])
        with self._lock:
            self._model = (stamp, model)
        return model

    def export_library(self, name: str) -> dict[str, Any]:
        """The compiled form of an imported library: ``name`` is a library name
        (``Demo.Energy``) or a model id (``Demo.Energy-1.0.0``, which must be the imported one)."""
        libraries = self.libraries()
        library_name, version = name, None
        if name not in libraries:
            with suppress(ValidationError):
                library_name, version = parse_model_id(name)
        library = libraries.get(library_name)
        if library is None or (version is not None and library.version != version):
            imported = ", ".join(sorted(lib.model_id for lib in libraries.values())) or "none"
            raise NotFound(
                f"library {name!r} is not imported in tenant {self.tenant_id!r}; "
                f"imported: {imported}"
            )
        return dump_library(library)

    # ---- changing ----------------------------------------------------------------------------

    def validate(self, source: Path | CkLibrary) -> CkModel:
        """Resolve the model as it would be with ``source`` imported; raise ModelError if not."""
        library = source if isinstance(source, CkLibrary) else load_library(source)
        return self._resolve_with(library)[0]

    def import_library(self, source: Path | CkLibrary) -> ImportReport:
        """Import (or upgrade to) a library; on any error nothing in the tenant changes.

        Upgrading to a newer version runs the library's migrations over the existing entities
        in the same atomic batch that stores the new version."""
        library = source if isinstance(source, CkLibrary) else load_library(source)
        if library.name == system_library().name:
            raise ModelError(
                f"library {library.model_id} replaces the built-in System library; "
                "rename it (System is provided by the platform)"
            )
        old_model = self.model()
        previous = self.own_libraries().get(library.name)
        report = ImportReport(library.model_id, previous.model_id if previous else None)
        if previous is not None:
            if previous.version > library.version:
                raise ModelError(
                    f"tenant {self.tenant_id!r} has {previous.model_id}; importing the older "
                    f"{library.model_id} is a downgrade, which is not supported"
                )
            if previous.version == library.version:
                if dump_library(previous) == dump_library(library):
                    report.unchanged = True
                    return report
                raise ModelError(
                    f"{library.model_id} is already imported in tenant {self.tenant_id!r} with "
                    "different content; give the changed library a new version"
                )
        new_model, _ = self._resolve_with(library)
        batch = WriteBatch()
        if previous is not None:
            migrated = self._migrate(previous, library, old_model, new_model)
            batch.updates.extend((e, e.rt_version - 1) for e in migrated)
            report.migrated_entities = len(migrated)
            if migrated:
                batch.meta.append(
                    MetaWrite(
                        _MIGRATIONS,
                        f"{library.name}:{previous.version}->{library.version}",
                        {"at": datetime.now(UTC).isoformat(), "entities": len(migrated)},
                    )
                )
        self._check_orphans(old_model, new_model, {e.rt_id for e, _ in batch.updates})
        self._store.ensure_indexes(index_specs(new_model))
        batch.meta.append(
            MetaWrite(
                _LIBRARIES,
                library.name,
                {"library": dump_library(library), "imported": datetime.now(UTC).isoformat()},
            )
        )
        batch.meta.append(MetaWrite(_STATE, "generation", {"generation": self.generation() + 1}))
        self._store.apply(batch)
        report.record_changes(old_model, new_model)
        return report

    def _resolve_with(self, library: CkLibrary) -> tuple[CkModel, list[CkLibrary]]:
        available: dict[str, list[CkLibrary]] = {}
        for lib in [*self.libraries().values(), system_library()]:
            if lib.name != library.name:
                available.setdefault(lib.name, []).append(lib)
        available[library.name] = [library]
        request = [Dependency(library.name, VersionRange.exactly(library.version))]
        request += [
            Dependency(lib.name, VersionRange.exactly(lib.version))
            for lib in self.libraries().values()
            if lib.name != library.name
        ]
        selected = select_versions(request, available)
        return resolve_model(selected), selected

    def _migrate(
        self, previous: CkLibrary, library: CkLibrary, old_model: CkModel, new_model: CkModel
    ) -> list[StoredEntity]:
        migrations = migrations_between(library, previous.version, library.version)
        steps = [step for migration in migrations for step in migration.steps]
        if not steps:
            return []
        now = datetime.now(UTC)
        changed: list[StoredEntity] = []
        page = self._store.find(EntityQuery(include_archived=True))
        for entity in page.items:
            old_type = old_model.types.get(entity.ck_type_id)
            new_type, attributes = apply_steps(
                steps,
                entity.ck_type_id,
                entity.attributes,
                base_type_ids=old_type.base_chain if old_type else (),
            )
            if new_type != entity.ck_type_id or attributes != entity.attributes:
                if new_type not in new_model.types:
                    raise ModelError(
                        f"migration of {library.model_id} moves entity {entity.rt_id} to type "
                        f"{new_type}, which the new model does not define; fix the migration"
                    )
                changed.append(
                    replace(
                        entity,
                        ck_type_id=new_type,
                        attributes=attributes,
                        rt_version=entity.rt_version + 1,
                        rt_changed_datetime=now,
                    )
                )
        return changed

    def _check_orphans(self, old: CkModel, new: CkModel, migrated: set[str]) -> None:
        gone = [t for t in old.types if t not in new.types]
        if not gone:
            return
        query = EntityQuery(type_ids=tuple(gone), include_archived=True, first=None)
        stranded = [e.rt_id for e in self._store.find(query).items if e.rt_id not in migrated]
        if stranded:
            raise ModelError(
                f"the new model removes type(s) {', '.join(sorted(gone))} but {len(stranded)} "
                f"entit{'y uses' if len(stranded) == 1 else 'ies use'} them (e.g. {stranded[0]}); "
                "add a migration (ChangeCkType) or delete those entities first"
            )


def index_specs(model: CkModel) -> list[Any]:
    """The store index specs the model asks for (CK ``indexes`` on types, plus their subtypes)."""
    from workbench.storage.base import IndexSpec

    kinds = {
        "Ascending": "ascending",
        "Text": "text",
        "Unique": "unique",
        "UniqueNotDeleted": "unique_not_deleted",
    }
    specs = []
    for ck_type in model.types.values():
        for position, index in enumerate(ck_type.own_indexes):
            # every attribute path of every field forms one (compound) index
            paths = tuple(
                ("attributes", *path.split("."))
                for field_paths in index.fields
                for path in field_paths
            )
            specs.append(
                IndexSpec(
                    name=f"{ck_type.id.replace('/', '_').replace('.', '_')}_{position}".lower(),
                    kind=kinds[str(index.index_type)],  # type: ignore[arg-type]
                    type_ids=tuple(model.type_and_descendants(ck_type.id)),
                    paths=paths,
                )
            )
    return specs
