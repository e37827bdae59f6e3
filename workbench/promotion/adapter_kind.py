"""Kind ``adapter``: the notebook's ``%%pipeline --name NAME`` cells become an adapter's pipelines,
its ``@register_node`` classes the adapter's custom nodes, and the adapter runs in the local pool.

Validation checks every pipeline definition against the nodes' JSON Schemas — the built-in
nodes and the notebook's custom nodes (:mod:`workbench.promotion.custom_nodes`, whose schemas
are kept in the artifact as ``customNodes``). Deploying writes ordinary runtime entities (the
Communication Controller's API): one ``System.Communication/Adapter`` (well-known name
``promotion.<name>``), one ``DataFlow`` and a ``Pipeline`` per cell executed by the adapter. A new
version (or a rollback) updates the definitions in place, adds new pipelines and disables those
the version no longer has. Then the version's process becomes the live one in the local pool
(:mod:`workbench.promotion.adapter_pool`): ``workbench adapter run`` with the version's custom
nodes, registering with the controller like any adapter. Retiring stops it.
``--no-start`` (option ``start: false``) writes the entities only; start a process yourself with
``workbench adapter run --tenant T --adapter <rtId>``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BackendUnavailable, ErrorDetail, NotFound, ValidationError
from workbench.promotion.adapter_pool import AdapterPool, ProcessSettings
from workbench.promotion.custom_nodes import check_pipelines, describe_custom_nodes, plugin_source
from workbench.promotion.notebooks import Notebook, cell_magic_cells
from workbench.promotion.promotion_kind import PromotionKind

if TYPE_CHECKING:
    from workbench.client.local import Tenant
    from workbench.promotion.artifacts import Artifact, ArtifactStore

__all__ = ["AdapterKind", "pipeline_cells"]

ADAPTER = "System.Communication/Adapter"
DATA_FLOW = "System.Communication/DataFlow"
PIPELINE = "System.Communication/Pipeline"
EXECUTES = "System.Communication/Executes"


def pipeline_cells(notebook: Notebook) -> dict[str, str]:
    """``{pipeline name: YAML}`` of the ``%%pipeline [--name NAME]`` cells (the magic of
    :mod:`workbench.communication.notebook`, which runs a definition on sample input in the
    kernel); unnamed cells are ``pipeline-1``, ``pipeline-2``, ...; the last cell of a name wins."""
    found: dict[str, str] = {}
    for number, (index, line, body) in enumerate(cell_magic_cells(notebook, "pipeline"), 1):
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ValidationError(f"cell {index}: %%pipeline {line}: {exc}") from None
        name = f"pipeline-{number}"
        for position, word in enumerate(words):
            if word == "--name" and position + 1 < len(words):
                name = words[position + 1]
            elif word.startswith("--name="):
                name = word.split("=", 1)[1]
        found[name] = body
    return found


class AdapterKind(PromotionKind):
    name = "adapter"

    def validate(
        self, tenant: Tenant, notebook: Notebook, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        pipelines = pipeline_cells(notebook)
        if not pipelines:
            raise ValidationError(
                "an adapter promotion needs %%pipeline --name NAME cells (each holds one pipeline "
                "definition in YAML: triggers and transformations); this notebook has none"
            )
        custom = describe_custom_nodes(notebook)
        problems = [
            ErrorDetail(
                p.message, f"pipeline {name}" + (f": {p.location}" if p.location else ""), p.element
            )
            for name, text in pipelines.items()
            for p in check_pipelines({name: text}, custom)
        ]
        if problems:
            raise ValidationError("the notebook's pipelines are not valid", problems)
        configuration = str(options.get("adapter_configuration") or '{"kind": "mesh"}')
        start = options.get("start", True) not in (False, "false", "no", 0)
        return {
            "pipelines": sorted(pipelines),
            "adapterConfiguration": configuration,
            "customNodes": custom,
            "process": ProcessSettings.from_options(dict(options)).to_dict() if start else None,
        }

    def deploy(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        report = _write_entities(tenant, artifact)
        process = artifact.details.get("process")
        if process is None:
            report["start"] = (
                f"workbench adapter run --tenant {tenant.id} --adapter {report['adapter']}"
            )
            return report
        pool = _pool(tenant)
        live = pool.current(artifact.name)
        try:
            report["process"] = pool.switch(
                artifact.name,
                artifact.version,
                report["adapter"],
                ProcessSettings.from_dict(process),
                plugin_source(Notebook(artifact.notebook, artifact.content_hash)),
            )
        except BackendUnavailable:
            # the live version's process runs again: so do its pipelines (nothing changed)
            if live is not None and int(live["version"]) != artifact.version:
                _write_entities(tenant, _artifacts(tenant).get(artifact.name, int(live["version"])))
            raise
        return report

    def retire(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        stopped = _pool(tenant).stop(artifact.name)
        return {"process": stopped} if stopped else {}

    def status(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        found: dict[str, Any] = {}
        process = _pool(tenant).status(artifact.name)
        if process is not None:
            found["process"] = process
        try:
            adapter = tenant.entities.get_by_well_known_name(f"promotion.{artifact.name}")
        except NotFound:
            return found
        attributes = adapter.attributes
        found["adapter"] = {
            "rtId": adapter.rt_id,
            "communicationState": attributes.get("communicationState"),
            "configurationState": attributes.get("configurationState"),
            "lastConfigurationError": attributes.get("lastConfigurationError"),
        }
        return found


def _write_entities(tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
    """The Adapter, DataFlow and Pipeline entities of ``artifact`` (created, updated in place,
    disabled when the version no longer has them)."""
    entities = tenant.entities
    pipelines = pipeline_cells(Notebook(artifact.notebook, artifact.content_hash))
    known = f"promotion.{artifact.name}"
    configuration = artifact.details.get("adapterConfiguration") or '{"kind": "mesh"}'
    try:
        adapter = entities.get_by_well_known_name(known)
    except NotFound:
        adapter = entities.create(
            ADAPTER,
            {"name": artifact.name, "adapterConfiguration": configuration},
            rt_well_known_name=known,
        )
        flow = entities.create(
            DATA_FLOW, {"name": artifact.name}, rt_well_known_name=f"{known}.flow"
        )
    else:
        flow = entities.get_by_well_known_name(f"{known}.flow")
    existing = {
        str(e.attributes.get("name")): e
        for e in entities.find(PIPELINE, first=None).items
        if e.rt_well_known_name and e.rt_well_known_name.startswith(f"{known}.pipeline.")
    }
    created, updated, disabled = [], [], []
    for name, text in pipelines.items():
        current = existing.pop(name, None)
        if current is None:
            entities.create(
                PIPELINE,
                {"name": name, "enabled": True, "pipelineDefinition": text},
                rt_well_known_name=f"{known}.pipeline.{name}",
                associations=[("System/ParentChild", flow.rt_id), (EXECUTES, adapter.rt_id)],
            )
            created.append(name)
        else:
            entities.update(current.rt_id, {"enabled": True, "pipelineDefinition": text})
            updated.append(name)
    for gone, entity in existing.items():
        entities.update(entity.rt_id, {"enabled": False})
        disabled.append(gone)
    return {"adapter": adapter.rt_id, "created": created, "updated": updated, "disabled": disabled}


def _artifacts(tenant: Tenant) -> ArtifactStore:
    from workbench.promotion.artifacts import ArtifactStore

    return ArtifactStore(Path(tenant.files_dir), tenant.id)


def _pool(tenant: Tenant) -> AdapterPool:
    # the pool creates the adapter's OAuth client in the Identity directory of the workbench
    return AdapterPool(tenant._workbench, tenant.id)
