"""Extract nodes: put values into the data context (constants, simulated values, entities and
pipeline configuration read through the tenant's runtime service)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.simulators import SIMULATORS, simulate

__all__ = ["NODES", "entity_filters", "entity_sort"]

_PATH = {"type": "string"}
_FILTERS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "attributePath": {"type": "string"},
            "operator": {"type": "string"},
            "comparisonValue": {},
        },
        "required": ["attributePath", "operator"],
        "additionalProperties": False,
    },
}
_SORTS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "attributePath": {"type": "string"},
            "sortOrder": {
                "type": "string",
                "enum": ["Ascending", "Descending", "ASCENDING", "DESCENDING", "ASC", "DESC"],
            },
        },
        "required": ["attributePath"],
        "additionalProperties": False,
    },
}


def entity_filters(filters: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """fieldFilters of a definition as the runtime service's filter dicts."""
    return [
        {
            "attributePath": f["attributePath"],
            "operator": str(f["operator"]).upper(),
            "comparisonValue": f.get("comparisonValue"),
        }
        for f in filters or []
    ]


def entity_sort(sorts: list[dict[str, Any]] | None) -> list[str]:
    out = []
    for s in sorts or []:
        descending = str(s.get("sortOrder", "Ascending")).upper().startswith("DESC")
        out.append(("-" if descending else "") + s["attributePath"])
    return out


class SetPrimitiveValue(Node):
    """Writes ``value`` (a string, number, boolean or null) to ``targetPath``."""

    type_name = "SetPrimitiveValue@1"
    properties: ClassVar[dict[str, Any]] = {
        "value": {"type": ["string", "number", "boolean", "null"]},
    }
    required = ("targetPath", "value")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        self.write(context, self.prop("value"))


class SetArrayOfPrimitiveValues(Node):
    """Writes the array ``values`` to ``targetPath``."""

    type_name = "SetArrayOfPrimitiveValues@1"
    properties: ClassVar[dict[str, Any]] = {
        "values": {"type": "array", "items": {"type": ["string", "number", "boolean", "null"]}},
    }
    required = ("targetPath", "values")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        self.write(context, list(self.prop("values")))


class WriteJson(Node):
    """Writes the JSON document ``json`` (an object, an array, or JSON text) to ``targetPath``."""

    type_name = "WriteJson@1"
    properties: ClassVar[dict[str, Any]] = {"json": {}}
    required = ("json",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        value = self.prop("json")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise self.error(f"not valid JSON: {exc}", "json") from exc
        self.write(context, value)


class Simulation(Node):
    """Writes simulated values: each of ``simulations`` gives a ``targetPath``, a
    ``simulatorKey`` (Math.DoubleRandom, Math.IntRandom, Text.Lorem.Word, ...) and its
    ``configuration`` (e.g. ``{min:15, max:35}``)."""

    type_name = "Simulation@1"
    properties: ClassVar[dict[str, Any]] = {
        "simulations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "targetPath": {"type": "string"},
                    "simulatorKey": {"type": "string", "enum": sorted(SIMULATORS)},
                    "configuration": {"type": ["string", "object"]},
                },
                "required": ["targetPath", "simulatorKey"],
                "additionalProperties": False,
            },
            "minItems": 1,
        },
    }
    required = ("simulations",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        for index, item in enumerate(self.prop("simulations")):
            try:
                value = simulate(item["simulatorKey"], item.get("configuration"))
            except ValueError as exc:
                raise self.error(str(exc), f"simulations[{index}]") from exc
            self.write(context, value, item["targetPath"])


class GetRtEntitiesByType(Node):
    """Reads entities of ``ckTypeId`` (``fieldFilters``, ``sortOrders``, ``skip``, ``take``)
    and writes them (as entity objects with rtId, ckTypeId and attributes) to ``targetPath``."""

    type_name = "GetRtEntitiesByType@1"
    properties: ClassVar[dict[str, Any]] = {
        "ckTypeId": {"type": "string"},
        "skip": {"type": "integer", "minimum": 0},
        "take": {"type": "integer", "minimum": 1, "maximum": 10000},
        "fieldFilters": _FILTERS,
        "sortOrders": _SORTS,
    }
    required = ("ckTypeId",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        skip = int(self.prop("skip", 0))
        take = int(self.prop("take", 100))
        page = await env.call(
            tenant.entities.find,
            self.prop("ckTypeId"),
            where=entity_filters(self.prop("fieldFilters")),
            sort=entity_sort(self.prop("sortOrders")),
            first=skip + take,
        )
        self.write(context, [e.to_dict() for e in page.items[skip:]])


class GetRtEntitiesById(Node):
    """Reads the entities whose rtIds are given (``rtIds``) or found at ``rtIdPath`` and
    writes them to ``targetPath`` (missing ones are left out)."""

    type_name = "GetRtEntitiesById@1"
    properties: ClassVar[dict[str, Any]] = {
        "ckTypeId": {"type": "string"},
        "rtIds": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
        "rtIdPath": _PATH,
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        ids = list(self.prop("rtIds") or [])
        if "rtIdPath" in self.props:
            found = context.get_all(self.prop("rtIdPath"))
            ids += [
                str(v)
                for v in (found[0] if len(found) == 1 and isinstance(found[0], list) else found)
            ]
        if not ids:
            raise self.error("no rtId given: set rtIds or rtIdPath", "rtIds")
        entities = await env.call(tenant.entities.get_many, ids)
        self.write(context, [entities[i].to_dict() for i in ids if i in entities])


class GetPipelineConfigByWellKnownName(Node):
    """Reads the configuration entity named ``wellKnownName`` (one the pipeline ``Uses``, or
    any entity with that rtWellKnownName) and writes it to ``targetPath``; a ``Configuration``
    attribute holding JSON/YAML text is parsed."""

    type_name = "GetPipelineConfigByWellKnownName@1"
    properties: ClassVar[dict[str, Any]] = {"wellKnownName": {"type": "string"}}
    required = ("wellKnownName",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        name = self.prop("wellKnownName")
        config = next(
            (dict(c) for c in env.configurations if c.get("rtWellKnownName") == name), None
        )
        if config is None:
            tenant = env.require_tenant(self)
            entity = await env.call(tenant.entities.get_by_well_known_name, name)
            config = entity.to_dict()
        text = config.get("configuration")
        if isinstance(text, str):
            import yaml

            try:
                config["configuration"] = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise self.error(f"the Configuration of {name!r} is not JSON/YAML: {exc}") from exc
        self.write(context, config)


NODES = [
    SetPrimitiveValue,
    SetArrayOfPrimitiveValues,
    WriteJson,
    Simulation,
    GetRtEntitiesByType,
    GetRtEntitiesById,
    GetPipelineConfigByWellKnownName,
]
