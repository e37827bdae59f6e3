"""The audit log: every mutation of a tenant, with who, when, what and the request id.

Entries live in the meta area of the tenant's own entity store (namespace ``audit``), so they
stay with the tenant's data and leave with it; identity changes of the platform itself go to
the system tenant's store. Keys sort by time, so a query reads newest first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.storage.base import EntityStore

__all__ = ["AUDIT_NAMESPACE", "AuditEntry", "AuditLog"]

AUDIT_NAMESPACE = "audit"


@dataclass(frozen=True)
class AuditEntry:
    """One audited change. ``actor`` is the token's subject (or ``cli:<user>`` for local
    commands), ``action`` a dotted verb (``user.create``), ``target`` what it touched."""

    id: str
    tenant_id: str
    at: str
    actor: str
    action: str
    target: str
    request_id: str | None
    details: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenantId": self.tenant_id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "requestId": self.request_id,
            "details": self.details,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> AuditEntry:
        return cls(
            id=doc["id"],
            tenant_id=doc["tenantId"],
            at=doc["at"],
            actor=doc["actor"],
            action=doc["action"],
            target=doc.get("target", ""),
            request_id=doc.get("requestId"),
            details=dict(doc.get("details") or {}),
        )


class AuditLog:
    """Writes and queries audit entries per tenant.

    ``store_for(tenant_id)`` returns the entity store the tenant's entries go to (for a
    :class:`~workbench.client.local.Workbench`: :meth:`AuditLog.for_workbench`).
    """

    def __init__(self, store_for: Callable[[str], EntityStore]) -> None:
        self._store_for = store_for
        self._lock = threading.Lock()
        self._last_ns = 0

    @classmethod
    def for_workbench(cls, workbench: Any) -> AuditLog:
        from workbench.tenancy.ids import SYSTEM_TENANT

        def store_for(tenant_id: str) -> EntityStore:
            if tenant_id == SYSTEM_TENANT:
                return workbench.system_store  # type: ignore[no-any-return]
            return workbench.tenant(tenant_id).entity_store  # type: ignore[no-any-return]

        return cls(store_for)

    def _key(self) -> str:
        with self._lock:  # strictly increasing keys, even within one clock tick
            now = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = now
        return f"{now:020d}-{uuid.uuid4().hex[:8]}"

    def record(
        self,
        tenant_id: str,
        *,
        actor: str,
        action: str,
        target: str = "",
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry to ``tenant_id``'s log and return it."""
        key = self._key()
        entry = AuditEntry(
            id=key,
            tenant_id=tenant_id,
            at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            actor=actor,
            action=action,
            target=target,
            request_id=request_id,
            details=dict(details or {}),
        )
        self._store_for(tenant_id).put_meta(AUDIT_NAMESPACE, key, entry.to_document())
        return entry

    def query(
        self,
        tenant_id: str,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries of ``tenant_id``, newest first, optionally filtered.

        ``action`` matches exactly or as a prefix ending in a dot (``user.`` for all user
        changes)."""
        docs = self._store_for(tenant_id).list_meta(AUDIT_NAMESPACE)
        since_text = since.astimezone(UTC).isoformat(timespec="milliseconds") if since else None
        out: list[AuditEntry] = []
        for key in sorted(docs, reverse=True):
            entry = AuditEntry.from_document(docs[key])
            if actor is not None and entry.actor != actor:
                continue
            if action is not None and not (
                entry.action == action or (action.endswith(".") and entry.action.startswith(action))
            ):
                continue
            if since_text is not None and entry.at < since_text:
                break
            out.append(entry)
            if len(out) >= limit:
                break
        return out
