"""Stale-file cleanup: files under a folder older than N days that no entity references.

A file counts as referenced when a ``BinaryLinked`` attribute of any entity of the tenant holds
its path relative to the folder (or its absolute path). Empty folders left behind are removed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.bots.builtin.selection import find_all
from workbench.ck.model import ValueType
from workbench.errors import NotFound

__all__ = ["CleanupReport", "clean_stale_files", "referenced_files"]


@dataclass
class CleanupReport:
    deleted: list[str] = field(default_factory=list)
    referenced: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def referenced_files(tenant: Any) -> set[str]:
    """Every value of a BinaryLinked attribute of the tenant's entities."""
    model = tenant.model
    found: set[str] = set()
    for type_id, ck_type in model.types.items():
        if ck_type.is_abstract:
            continue
        names = [
            n[:1].lower() + n[1:]
            for n, a in ck_type.attributes.items()
            if a.attribute.value_type == ValueType.BINARY_LINKED
        ]
        if not names:
            continue
        for entity in find_all(tenant, type_id):
            if entity.ck_type_id != type_id:
                continue  # a subtype: seen under its own type
            found.update(str(entity.attributes[n]) for n in names if entity.attributes.get(n))
    return found


def clean_stale_files(
    tenant: Any,
    root: Path,
    *,
    max_age_days: float,
    pattern: str = "**/*",
    dry_run: bool = False,
    now: datetime | None = None,
) -> CleanupReport:
    """Delete the files under ``root`` matching ``pattern`` last modified more than
    ``max_age_days`` ago and not referenced (see the module doc)."""
    if not root.is_dir():
        raise NotFound(f"folder {str(root)!r} does not exist; set files_dir to the file store")
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=max_age_days)).timestamp()
    references = referenced_files(tenant)
    report = CleanupReport(dry_run=dry_run)
    for path in sorted(root.glob(pattern)):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(root).as_posix()
        stat = path.stat()
        if stat.st_mtime >= cutoff:
            continue
        if relative in references or str(path) in references:
            report.referenced.append(relative)
            continue
        report.deleted.append(relative)
        report.bytes_freed += stat.st_size
        if not dry_run:
            path.unlink()
    if not dry_run:
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    return report
