"""Immutable, versioned promotion artifacts and the one pointer that says which is deployed.

Per tenant and promotion name, in the tenant's file area::

    <home>/tenants/<tenant>/promotions/<name>/
        versions/<k>.json      the artifact (metadata + stripped notebook), written once, 0444
        deployment.json        {"version": k, "state": "deployed" | "retired", ...}
        history.jsonl          one line per deploy, rollback and retire

An artifact file is created with ``O_EXCL`` and never rewritten; reading it checks the content
hash again, so a file changed behind the store's back is refused. Deploying, rolling back and
retiring replace ``deployment.json`` with ``os.replace``: readers see the old pointer or the new
one, never a mix (the atomic switch of a rollback).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.promotion.notebooks import Notebook

__all__ = ["KINDS", "NAME_PATTERN", "Artifact", "ArtifactStore", "Deployment", "check_name"]

KINDS = ("ck", "bot", "adapter", "graphql")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            f"promotion name {name!r} is invalid: 2-63 lower-case letters, digits and '-', "
            "starting with a letter (pass --name, e.g. --name daily-aggregate)"
        )
    return name


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Artifact:
    """One promoted version ``name@version`` of a notebook."""

    tenant: str
    name: str
    version: int
    kind: str
    content_hash: str
    author: str
    created: str
    parameters: dict[str, Any]
    packages: dict[str, str]
    #: what validation found for the kind (libraries of a ck notebook, functions of a graphql
    #: notebook, the schedule of a bot)
    details: dict[str, Any] = field(default_factory=dict)
    notebook: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def summary(self) -> dict[str, Any]:
        """The artifact without its notebook (what ``promotions show`` prints)."""
        data = asdict(self)
        data.pop("notebook")
        data["ref"] = self.ref
        return data


@dataclass(frozen=True)
class Deployment:
    """Which version of a promotion is live (``state`` deployed) or none (retired)."""

    name: str
    kind: str
    version: int
    state: str
    at: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArtifactStore:
    """The promotions of one tenant (see the module docstring for the layout)."""

    def __init__(self, tenant_dir: Path, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.root = tenant_dir / "promotions"

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Serialise writers of one promotion name (across processes)."""
        folder = self._dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())

    def versions(self, name: str) -> list[int]:
        folder = self._dir(name) / "versions"
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def add(
        self,
        *,
        name: str,
        kind: str,
        notebook: Notebook,
        author: str,
        parameters: dict[str, Any],
        packages: dict[str, str],
        details: dict[str, Any],
    ) -> Artifact:
        """Write the next version of ``name`` (call under :meth:`locked`)."""
        existing = self.versions(name)
        if existing:
            previous = self.get(name, existing[-1])
            if previous.kind != kind:
                raise Conflict(
                    f"promotion {name!r} of tenant {self.tenant_id!r} is a {previous.kind!r} "
                    f"promotion; promote this {kind!r} notebook under another --name"
                )
        artifact = Artifact(
            tenant=self.tenant_id,
            name=name,
            version=(existing[-1] + 1) if existing else 1,
            kind=kind,
            content_hash=notebook.content_hash,
            author=author,
            created=now(),
            parameters=parameters,
            packages=packages,
            details=details,
            notebook=notebook.content,
        )
        folder = self._dir(name) / "versions"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{artifact.version}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(artifact), out, ensure_ascii=False, indent=1, default=str)
        return artifact

    def get(self, name: str, version: int | None = None) -> Artifact:
        """``name@version`` (default: the deployed version, else the latest)."""
        if version is None:
            deployment = self.deployment(name)
            versions = self.versions(name)
            if deployment is not None:
                version = deployment.version
            elif versions:
                version = versions[-1]
            else:
                raise NotFound(
                    f"tenant {self.tenant_id!r} has no promotion {name!r}; list them with "
                    "`workbench promotions list --tenant T`"
                )
        path = self._dir(name) / "versions" / f"{version}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = ", ".join(str(v) for v in self.versions(name)) or "none"
            raise NotFound(
                f"promotion {name!r} of tenant {self.tenant_id!r} has no version {version} "
                f"(versions: {known})"
            ) from None
        artifact = Artifact(**data)
        if Notebook.from_content(artifact.notebook).content_hash != artifact.content_hash:
            raise Conflict(
                f"artifact {artifact.ref} of tenant {self.tenant_id!r} was changed after it was "
                f"written ({path}); artifacts are immutable: promote the notebook again"
            )
        return artifact

    def deployment(self, name: str) -> Deployment | None:
        path = self._dir(name) / "deployment.json"
        try:
            return Deployment(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def deployments(self, kind: str | None = None) -> list[Deployment]:
        """The live (deployed) promotions, optionally of one kind."""
        found = []
        for name in self.names():
            deployment = self.deployment(name)
            live = deployment is not None and deployment.state == "deployed"
            if live and deployment is not None and kind in (None, deployment.kind):
                found.append(deployment)
        return found

    def switch(self, artifact: Artifact, *, state: str, by: str, action: str) -> Deployment:
        """Point ``deployment.json`` at ``artifact`` in one atomic rename; log it."""
        deployment = Deployment(artifact.name, artifact.kind, artifact.version, state, now(), by)
        folder = self._dir(artifact.name)
        tmp = folder / f".deployment.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(deployment.to_dict()), encoding="utf-8")
        os.replace(tmp, folder / "deployment.json")
        with open(folder / "history.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps({"action": action, **deployment.to_dict()}) + "\n")
        marker = self.root / f".deployments.{os.getpid()}.tmp"
        marker.write_text(f"{artifact.name}@{artifact.version} {state} {now()}", encoding="utf-8")
        os.replace(marker, self.root / ".deployments")
        return deployment

    def deployments_stamp(self) -> int:
        """Changes with every deploy, rollback or retire of any promotion of the tenant (one
        ``stat``: cheap enough for every GraphQL request)."""
        try:
            return (self.root / ".deployments").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def history(self, name: str) -> list[dict[str, Any]]:
        path = self._dir(name) / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def stamp(self, kind: str) -> tuple[tuple[str, int, str], ...]:
        """What changes when a promotion of ``kind`` is deployed, rolled back or retired."""
        return tuple((d.name, d.version, d.state) for d in self.deployments(kind))
