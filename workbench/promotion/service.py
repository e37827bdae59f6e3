"""``Promotions``: promote a notebook, list, show, diff, roll back and retire promotions.

Promotion = validate for the kind, write an immutable artifact (``name@k``), deploy it, switch
the deployment pointer. A rollback deploys an earlier artifact and switches the pointer in one
rename; when deploying fails, the pointer stays where it was. The service works on the data
directory; the CLI, ``%promote`` and the Bot Service's REST API all call it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import Conflict, ValidationError
from workbench.promotion.artifacts import (
    KINDS,
    Artifact,
    ArtifactStore,
    Deployment,
    check_name,
)
from workbench.promotion.kinds import kind_handler
from workbench.promotion.notebooks import (
    Notebook,
    imported_packages,
    load_notebook,
    notebook_parameters,
)
from workbench.promotion.validation_run import RunCheck, fresh_kernel_check

if TYPE_CHECKING:
    from workbench.client.local import Workbench

__all__ = ["PromotionResult", "Promotions", "RunCheck", "default_name"]


def default_name(path: Path) -> str:
    """A promotion name from a notebook file name: ``05-Daily Aggregate.ipynb`` →
    ``daily-aggregate``."""
    stem = re.sub(r"^\d+[-_ ]*", "", path.stem).lower()
    name = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    return name if re.match(r"^[a-z]", name or "") else f"nb-{name}".rstrip("-")


@dataclass(frozen=True)
class PromotionResult:
    artifact: Artifact
    deployment: Deployment
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.artifact.summary(),
            "deployment": self.deployment.to_dict(),
            "report": self.report,
        }


class Promotions:
    """The promotions of every tenant of a data directory."""

    def __init__(self, workbench: Workbench, *, run_check: RunCheck | None = None) -> None:
        self.workbench = workbench
        #: the validation run of bots (default: a fresh kernel on the data directory)
        self.run_check = run_check or fresh_kernel_check(Path(workbench.home))

    def store(self, tenant_id: str) -> ArtifactStore:
        self.workbench.tenant(tenant_id)  # NotFound for an unknown tenant
        return ArtifactStore(self.workbench.registry.tenant_dir(tenant_id), tenant_id)

    def promote(
        self,
        tenant_id: str,
        source: Path | str | dict[str, Any],
        *,
        kind: str,
        author: str,
        name: str | None = None,
        options: Mapping[str, Any] | None = None,
        validation_run: bool = False,
        run_check: RunCheck | None = None,
    ) -> PromotionResult:
        """Validate ``source`` as a ``kind`` notebook, store it as the next version of ``name``
        and deploy it. A bot with ``validation_run`` runs once first in a fresh kernel
        (:attr:`run_check`, or ``run_check`` given here); a failed run refuses it."""
        if kind not in KINDS:
            kind_handler(kind)  # raises with the list of kinds
        if name is None:
            if not isinstance(source, Path):
                raise ValidationError("give the promotion a name (--name N)")
            name = default_name(source)
        check_name(name)
        notebook = load_notebook(source)
        tenant = self.workbench.tenant(tenant_id)
        handler = kind_handler(kind)
        details = handler.validate(tenant, notebook, dict(options or {}))
        parameters = notebook_parameters(notebook)
        if run_check is None and validation_run and kind == "bot":
            run_check = self.run_check
        if run_check is not None:
            outcome = run_check(tenant_id, notebook.content, parameters)
            if outcome.status != "succeeded":
                raise ValidationError(
                    f"the notebook did not run top to bottom in a fresh kernel of tenant "
                    f"{tenant_id!r} ({outcome.status}): {outcome.error}; nothing was promoted"
                )
            details["validationRun"] = {"seconds": round(outcome.seconds, 3)}
        store = self.store(tenant_id)
        with store.locked(name):
            artifact = store.add(
                name=name,
                kind=kind,
                notebook=notebook,
                author=author,
                parameters=parameters,
                packages=imported_packages(notebook),
                details=details,
            )
            report = handler.deploy(tenant, artifact)
            deployment = store.switch(artifact, state="deployed", by=author, action="promote")
        return PromotionResult(artifact, deployment, report)

    def list(self, tenant_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        store = self.store(tenant_id)
        rows = []
        for name in store.names():
            versions = store.versions(name)
            latest = store.get(name, versions[-1])
            if kind is not None and latest.kind != kind:
                continue
            deployment = store.deployment(name)
            rows.append(
                {
                    "name": name,
                    "kind": latest.kind,
                    "versions": len(versions),
                    "latest": latest.version,
                    "deployed": deployment.version
                    if deployment and deployment.state == "deployed"
                    else None,
                    "state": deployment.state if deployment else "stored",
                    "author": latest.author,
                    "updated": deployment.at if deployment else latest.created,
                }
            )
        return rows

    def show(self, tenant_id: str, name: str, version: int | None = None) -> dict[str, Any]:
        store = self.store(tenant_id)
        artifact = store.get(name, version)
        deployment = store.deployment(name)
        running: dict[str, Any] = {}
        if deployment is not None:
            deployed = store.get(name, deployment.version)
            running = kind_handler(deployed.kind).status(self.workbench.tenant(tenant_id), deployed)
        return {
            **artifact.summary(),
            "versions": store.versions(name),
            "deployment": deployment.to_dict() if deployment else None,
            "history": store.history(name),
            **running,
        }

    def diff(self, tenant_id: str, name: str, old: int, new: int) -> str:
        """A unified diff of two versions: cell sources and the artifact metadata."""
        store = self.store(tenant_id)
        a, b = store.get(name, old), store.get(name, new)
        return "".join(
            difflib.unified_diff(
                _diff_text(a).splitlines(keepends=True),
                _diff_text(b).splitlines(keepends=True),
                fromfile=a.ref,
                tofile=b.ref,
            )
        )

    def rollback(
        self, tenant_id: str, name: str, *, by: str, to: int | None = None
    ) -> PromotionResult:
        """Deploy an earlier version (default: the one before the deployed one) and switch to
        it atomically; nothing changes when deploying it fails."""
        store = self.store(tenant_id)
        tenant = self.workbench.tenant(tenant_id)
        with store.locked(name):
            current = store.deployment(name)
            versions = store.versions(name)
            if to is None:
                base = current.version if current is not None else (versions or [0])[-1]
                earlier = [v for v in versions if v < base]
                if not earlier:
                    raise Conflict(
                        f"promotion {name!r} of tenant {tenant_id!r} has no version before "
                        f"{base} to roll back to"
                    )
                to = earlier[-1]
            artifact = store.get(name, to)
            report = kind_handler(artifact.kind).deploy(tenant, artifact)
            deployment = store.switch(artifact, state="deployed", by=by, action="rollback")
        return PromotionResult(artifact, deployment, report)

    def retire(self, tenant_id: str, name: str, *, by: str) -> Deployment:
        """Take a promotion out of service (its artifacts stay; promote or roll back to
        deploy again). A retired CK library stays imported: entities depend on it."""
        store = self.store(tenant_id)
        tenant = self.workbench.tenant(tenant_id)
        with store.locked(name):
            artifact = store.get(name)
            kind_handler(artifact.kind).retire(tenant, artifact)
            return store.switch(artifact, state="retired", by=by, action="retire")


def _diff_text(artifact: Artifact) -> str:
    meta = {
        "kind": artifact.kind,
        "parameters": artifact.parameters,
        "packages": artifact.packages,
        "details": artifact.details,
    }
    parts = [json.dumps(meta, indent=1, sort_keys=True, default=str), ""]
    for index, cell in enumerate(artifact.notebook.get("cells", [])):
        parts.append(f"# --- cell {index} ({cell.get('cell_type')})")
        parts.append(str(cell.get("source", "")))
    return "\n".join(parts) + "\n"


def stored_notebook(artifact: Artifact) -> Notebook:
    return Notebook(artifact.notebook, artifact.content_hash)
