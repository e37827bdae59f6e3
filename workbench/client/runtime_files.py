"""Runtime entity files through the Asset Repository (``runtime/import`` and ``runtime/export``):
what ``workbench rt import|export`` use on a remote tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["export_remote", "import_remote"]


def import_remote(tenant: Any, file: Path) -> dict[str, int]:
    """Upload ``file`` (YAML or JSON) to the tenant's runtime import; ``created``/``updated``."""
    content_type = "application/json" if file.suffix.lower() == ".json" else "application/yaml"
    data = tenant._http.json(
        "POST", "/runtime/import", content=file.read_bytes(), headers={"Content-Type": content_type}
    )
    return {"created": int(data["created"]), "updated": int(data["updated"])}


def export_remote(
    tenant: Any, file: Path, *, ck_type_id: str | None, include_archived: bool
) -> int:
    """Write the tenant's entities (of ``ck_type_id``) to ``file``; returns how many."""
    params: dict[str, Any] = {"format": "json" if file.suffix.lower() == ".json" else "yaml"}
    if ck_type_id:
        params["ckTypeId"] = ck_type_id
    if include_archived:
        params["includeArchived"] = "true"
    response = tenant._http.request("GET", "/runtime/export", params=params)
    file.write_bytes(response.content)
    return int(response.headers.get("X-Workbench-Entity-Count", "0"))
