"""Read nodes of the catalogue that go through the tenant's data services:
``GetRtEntitiesByWellKnownName@1``, ``GetAssociationTargets@1``, ``GetStreamData@1``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node

__all__ = ["NODES"]

_PATH = {"type": "string", "description": "a JSONPath ($.a.b)"}
_RT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}


def _values(node: Node, context: DataContext, name: str, path_name: str) -> list[Any]:
    """The values of property ``name`` (one or a list) plus those found at ``path_name``."""
    given = node.prop(name)
    values = list(given) if isinstance(given, list) else ([] if given is None else [given])
    if path_name in node.props:
        found = context.get(node.prop(path_name))
        values += found if isinstance(found, list) else ([] if found is None else [found])
    if not values:
        raise node.error(f"nothing given: set {name} or {path_name}", name)
    return values


class GetRtEntitiesByWellKnownName(Node):
    """Reads the entities named ``wellKnownName`` (one name or a list) or the names found at
    ``wellKnownNamePath`` and writes them (entity objects) to ``targetPath``: one entity for one
    name, else a list in the order of the names. A name no entity has is an error naming it."""

    type_name = "GetRtEntitiesByWellKnownName@1"
    properties: ClassVar[dict[str, Any]] = {
        "wellKnownName": {"type": ["string", "array"], "items": {"type": "string"}},
        "wellKnownNamePath": _PATH,
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        names = [str(n) for n in _values(self, context, "wellKnownName", "wellKnownNamePath")]
        entities = [
            (await env.call(tenant.entities.get_by_well_known_name, name)).to_dict()
            for name in names
        ]
        single = isinstance(self.prop("wellKnownName"), str) and len(names) == 1
        self.write(context, entities[0] if single else entities)


class GetAssociationTargets(Node):
    """Reads the entities linked to ``rtId`` (or the rtIds at ``rtIdPath``) through the
    association end ``associationName`` (an outbound name such as ``parent``, or an inbound one
    such as ``children``) and writes them, in order and without repeats, to ``targetPath``."""

    type_name = "GetAssociationTargets@1"
    properties: ClassVar[dict[str, Any]] = {
        "rtId": _RT_ID,
        "rtIdPath": _PATH,
        "associationName": {"type": "string", "description": "e.g. parent, children"},
    }
    required = ("associationName",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        name = self.prop("associationName")
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for rt_id in _values(self, context, "rtId", "rtIdPath"):
            for entity in await env.call(tenant.entities.navigate, str(rt_id), name):
                if entity.rt_id not in seen:
                    seen.add(entity.rt_id)
                    out.append(entity.to_dict())
        self.write(context, out)


class GetStreamData(Node):
    """Reads stream points of ``ckTypeId`` in ``[from, to)`` (ISO 8601, given or at
    ``fromPath``/``toPath``) for the ``rtIds`` (or those at ``rtIdPath``; all when neither is
    set), optionally only ``attributes``, at most ``take`` (default 1000) in time order
    (``descending`` for the newest first), and writes them as rows (rtId, timeStamp as ISO
    text, one key per attribute) to ``targetPath``."""

    type_name = "GetStreamData@1"
    properties: ClassVar[dict[str, Any]] = {
        "ckTypeId": {"type": "string"},
        "rtIds": {"type": "array", "items": _RT_ID},
        "rtIdPath": _PATH,
        "from": {"type": "string"},
        "fromPath": _PATH,
        "to": {"type": "string"},
        "toPath": _PATH,
        "attributes": {"type": "array", "items": {"type": "string"}},
        "take": {"type": "integer", "minimum": 1, "maximum": 100000},
        "descending": {"type": "boolean"},
    }
    required = ("ckTypeId",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        given = "rtIds" in self.props or "rtIdPath" in self.props
        rt_ids = [str(r) for r in _values(self, context, "rtIds", "rtIdPath")] if given else None
        bounds = [
            context.get(self.prop(f"{key}Path")) if f"{key}Path" in self.props else self.prop(key)
            for key in ("from", "to")
        ]
        result = await env.call(
            tenant.streams(self.prop("ckTypeId")).read,
            bounds[0],
            bounds[1],
            rt_ids=rt_ids,
            attributes=self.prop("attributes"),
            descending=bool(self.prop("descending", False)),
            first=int(self.prop("take", 1000)),
        )
        rows = [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            for row in result.rows()
        ]
        self.write(context, rows)


NODES = [GetRtEntitiesByWellKnownName, GetAssociationTargets, GetStreamData]
