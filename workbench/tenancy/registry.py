"""The tenant registry, kept in the system tenant's entity store.

A tenant record holds its id, optional parent, description, creation time and configuration.
Configuration keys cascade: a child sees every key of its ancestors it does not set itself. The
backend URLs (``entities.url``, ``streams.url``) are the exception: they never cascade, because a
child sharing its parent's database would break tenant isolation; unset, they default to embedded
files under the data directory.
"""

from __future__ import annotations

import builtins
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.storage.base import EntityStore
from workbench.tenancy.ids import validate_tenant_id

__all__ = ["BACKEND_KEYS", "TenantRecord", "TenantRegistry"]

_NAMESPACE = "tenants"
ENTITIES_URL = "entities.url"
STREAMS_URL = "streams.url"
#: configuration keys that never cascade from a parent
BACKEND_KEYS = frozenset({ENTITIES_URL, STREAMS_URL})


@dataclass
class TenantRecord:
    id: str
    parent: str | None = None
    description: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    config: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "description": self.description,
            "created": self.created.isoformat(),
            "config": self.config,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> TenantRecord:
        return cls(
            id=doc["id"],
            parent=doc.get("parent"),
            description=doc.get("description"),
            created=datetime.fromisoformat(doc["created"]),
            config=dict(doc.get("config") or {}),
        )


class TenantRegistry:
    """Create, list, get and delete tenants; compute effective (cascaded) configuration."""

    def __init__(
        self, system_store: EntityStore, home: Path, *, url_templates: dict[str, str] | None = None
    ) -> None:
        self._store = system_store
        self.home = home
        #: backend URLs of new tenants ('{tenant}', '{tenant_sql}' filled in); unset: embedded
        self.url_templates = {k: v for k, v in (url_templates or {}).items() if v}

    def tenant_dir(self, tenant_id: str) -> Path:
        """The tenant's file area (embedded databases, notebooks, artifacts)."""
        return self.home / "tenants" / tenant_id

    def default_config(self, tenant_id: str) -> dict[str, str]:
        base = self.tenant_dir(tenant_id)
        embedded = {
            ENTITIES_URL: f"sqlite:///{base / 'entities.db'}",
            STREAMS_URL: f"duckdb:///{base / 'streams.duckdb'}",
        }
        names = {"tenant": tenant_id, "tenant_sql": tenant_id.replace("-", "_")}
        for key, template in self.url_templates.items():
            embedded[key] = template.replace("{tenant}", names["tenant"]).replace(
                "{tenant_sql}", names["tenant_sql"]
            )
        return embedded

    def create(
        self,
        tenant_id: str,
        *,
        parent: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> TenantRecord:
        validate_tenant_id(tenant_id)
        if self._store.get_meta(_NAMESPACE, tenant_id) is not None:
            raise Conflict(
                f"tenant {tenant_id!r} already exists; choose another id or delete it first "
                f"(workbench tenant delete {tenant_id} --yes)"
            )
        if parent is not None:
            self.get(parent)
        own = dict(config or {})
        for key in BACKEND_KEYS:
            own.setdefault(key, self.default_config(tenant_id)[key])
        _check_backend_urls(tenant_id, own)
        record = TenantRecord(id=tenant_id, parent=parent, description=description, config=own)
        self._store.put_meta(_NAMESPACE, tenant_id, record.to_document())
        return record

    def get(self, tenant_id: str) -> TenantRecord:
        doc = self._store.get_meta(_NAMESPACE, tenant_id)
        if doc is None:
            raise NotFound(
                f"tenant {tenant_id!r} does not exist; list tenants with 'workbench tenant list' "
                f"or create it with 'workbench tenant create {tenant_id}'"
            )
        return TenantRecord.from_document(doc)

    def exists(self, tenant_id: str) -> bool:
        return self._store.get_meta(_NAMESPACE, tenant_id) is not None

    def list(self) -> builtins.list[TenantRecord]:
        docs = self._store.list_meta(_NAMESPACE)
        return sorted((TenantRecord.from_document(d) for d in docs.values()), key=lambda r: r.id)

    def children(self, tenant_id: str) -> builtins.list[TenantRecord]:
        return [r for r in self.list() if r.parent == tenant_id]

    def descendants(self, tenant_id: str) -> builtins.list[str]:
        """Every tenant below ``tenant_id`` (children, grandchildren, ...)."""
        out: builtins.list[str] = []
        queue = [tenant_id]
        while queue:
            current = queue.pop(0)
            for child in self.children(current):
                out.append(child.id)
                queue.append(child.id)
        return out

    def ancestors(self, tenant_id: str) -> builtins.list[TenantRecord]:
        """The parent chain of ``tenant_id``, nearest first."""
        chain: builtins.list[TenantRecord] = []
        record = self.get(tenant_id)
        while record.parent is not None:
            record = self.get(record.parent)
            chain.append(record)
        return chain

    def effective_config(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's configuration with the keys it inherits from its ancestors."""
        record = self.get(tenant_id)
        merged: dict[str, Any] = {}
        for ancestor in reversed(self.ancestors(tenant_id)):
            merged.update({k: v for k, v in ancestor.config.items() if k not in BACKEND_KEYS})
        merged.update(record.config)
        return merged

    def set_config(self, tenant_id: str, key: str, value: Any | None) -> TenantRecord:
        """Set (or with ``None`` remove) one of the tenant's own configuration keys."""
        record = self.get(tenant_id)
        if key in BACKEND_KEYS:
            raise ValidationError(
                f"configuration key {key!r} of tenant {tenant_id!r} is fixed at creation; "
                "moving a tenant to another backend needs an export and an import"
            )
        if value is None:
            record.config.pop(key, None)
        else:
            record.config[key] = value
        self._store.put_meta(_NAMESPACE, tenant_id, record.to_document())
        return record

    def check_removable(self, tenant_id: str) -> TenantRecord:
        """The tenant's record; Conflict when child tenants still depend on it."""
        record = self.get(tenant_id)
        children = self.children(tenant_id)
        if children:
            names = ", ".join(c.id for c in children)
            raise Conflict(f"tenant {tenant_id!r} has child tenants ({names}); delete them first")
        return record

    def remove(self, tenant_id: str) -> TenantRecord:
        """Remove the registry entry and the tenant's file area (the caller drops the
        backends first)."""
        record = self.check_removable(tenant_id)
        self._store.put_meta(_NAMESPACE, tenant_id, None)
        shutil.rmtree(self.tenant_dir(tenant_id), ignore_errors=True)
        return record


def _check_backend_urls(tenant_id: str, config: dict[str, Any]) -> None:
    from workbench.storage.backends import ENTITY_STORES, STREAM_STORES

    for key, registry in ((ENTITIES_URL, ENTITY_STORES), (STREAMS_URL, STREAM_STORES)):
        url = str(config[key])
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in registry:
            raise ValidationError(
                f"configuration {key}={url!r} of tenant {tenant_id!r} has an unknown scheme; "
                f"use one of: {', '.join(s + '://' for s in sorted(registry))}"
            )
