"""Connection settings of the protocol nodes: configuration entities (``Uses``) plus the
adapter's own credentials.

A protocol node names its server with a property (``broker``, ``server``): the ``rtId``,
``rtWellKnownName`` or ``name`` of a configuration entity the pipeline ``Uses`` (pushed with the
adapter's configuration), else an entity with that rtWellKnownName read through the tenant.

Secrets (passwords) and local files (CA certificates, client certificates, keys) can stay out of
the platform: the adapter's credentials file (``WORKBENCH_ADAPTER_CREDENTIALS``, a JSON object
``{"<configuration name>": {"password": ..., "caFile": ..., "certFile": ..., "keyFile": ...}}``,
readable by the adapter's account only) is merged over the entity's attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import NotFound, ValidationError
from workbench.runtime.secrets import MASK
from workbench.settings import Settings, current_settings

__all__ = ["CREDENTIALS_ENV", "adapter_credentials", "host_configurations", "resolve_connection"]

#: the setting naming the adapter's credentials file (Settings.adapter_credentials)
CREDENTIALS_ENV = "WORKBENCH_ADAPTER_CREDENTIALS"


def adapter_credentials(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The adapter's credentials file (see the module docstring; the ``adapter_credentials``
    setting); {} when none is set."""
    name = (settings or current_settings()).adapter_credentials.strip()
    if not name:
        return {}
    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(
            f"{CREDENTIALS_ENV}={name}: cannot read the adapter's credentials file ({exc}); "
            'write a JSON object {"<configuration name>": {"password": "..."}}'
        ) from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{CREDENTIALS_ENV}={name}: expected a JSON object")
    return {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}


def host_configurations(host: Any) -> list[Mapping[str, Any]]:
    """The configuration entities of the pipeline a trigger host runs (empty outside one)."""
    found = getattr(host, "configurations", None)
    if found is not None:
        return list(found)
    runtime = getattr(host, "runtime", None)
    deployed = getattr(runtime, "pipelines", {}).get(getattr(host, "pipeline_rt_id", None))
    return list(getattr(deployed, "configurations", []) or [])


def _names(entity: Mapping[str, Any]) -> Iterable[str]:
    for key in ("rtId", "rtWellKnownName", "name"):
        value = entity.get(key)
        if value:
            yield str(value)


def resolve_connection(
    reference: str,
    ck_type_id: str,
    configurations: Iterable[Mapping[str, Any]],
    tenant: Any = None,
) -> dict[str, Any]:
    """The settings of configuration ``reference`` (a ``ck_type_id`` entity) with the adapter's
    credentials merged in."""
    wanted = str(reference)
    entity: dict[str, Any] | None = None
    for candidate in configurations:
        if wanted in _names(candidate):
            entity = dict(candidate)
            break
    if entity is None and tenant is not None:
        try:
            entity = tenant.entities.get_by_well_known_name(wanted).to_dict()
        except NotFound:
            entity = None
    if entity is None:
        raise NotFound(
            f"no {ck_type_id} configuration {wanted!r}: associate one with the pipeline (Uses) "
            "or give one that rtWellKnownName"
        )
    actual = entity.get("ckTypeId")
    if actual and str(actual).split("/")[-1] != ck_type_id.rsplit("/", maxsplit=1)[-1]:
        raise ValidationError(
            f"configuration {wanted!r} is a {actual}, not a {ck_type_id}: name a {ck_type_id}"
        )
    credentials = adapter_credentials()
    for name in _names(entity):
        if name in credentials:
            entity.update(credentials[name])
            break
    masked = sorted(k for k, v in entity.items() if v == MASK)
    if masked:
        raise ValidationError(
            f"configuration {wanted!r} has secret {', '.join(masked)} that only reaches "
            "pipelines using it: link the pipeline to it (System.Communication/Uses), or give "
            f"the value in the adapter's credentials file ({CREDENTIALS_ENV})"
        )
    return entity
