"""Load nodes: write entity changes and stream points through the tenant's runtime and stream
services (validated, atomic per batch, audited), hand data to other pipelines, call webhooks."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from workbench.ck.naming import graphql_field_name
from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.updates import UPDATE_KINDS
from workbench.communication.schema import enum_value
from workbench.errors import Conflict, ValidationError
from workbench.runtime.entity import AssociationInput, EntityInput, EntityUpdate

__all__ = ["NODES", "apply_changes"]

_PATH = {"type": "string"}
#: attempts of a batch that met a version conflict
RETRIES = 3


def _point_table(points: list[dict[str, Any]]) -> Any:
    """The points as an Arrow table (one column per field, converted by the stream service in
    bulk), or the dicts themselves when a column mixes types Arrow cannot hold together (the
    service then names the point at fault)."""
    import pyarrow as pa

    shape = tuple(points[0]) if points else ()
    if all(tuple(point) == shape for point in points):  # the usual batch: the same keys
        fields = dict.fromkeys(shape)
    else:
        fields = {}
        for point in points:
            if len(point) != len(fields) or point.keys() - fields.keys():
                fields.update(dict.fromkeys(point))
    try:
        return pa.table({name: pa.array([p.get(name) for p in points]) for name in fields})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return points


def _items(value: Any) -> list[dict[str, Any]]:
    """The dicts at a path: one, a list of them, or a list of such lists (a BufferData@1
    batch of polls), flattened in order."""
    if value is None:
        return []
    out: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, list):
            out.extend(v for v in item if isinstance(v, dict))
    return out


def apply_changes(
    tenant: Any, updates: list[dict[str, Any]], associations: list[dict[str, Any]]
) -> dict[str, int]:
    """Apply update infos and association updates in one atomic batch (deletes after it);
    retried on a version conflict. Returns counts by kind."""
    for attempt in range(RETRIES):
        try:
            return _apply_once(tenant, updates, associations)
        except Conflict:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _apply_once(
    tenant: Any, updates: list[dict[str, Any]], associations: list[dict[str, Any]]
) -> dict[str, int]:
    creates: list[EntityInput] = []
    changes: dict[str, EntityUpdate] = {}
    deletes: list[str] = []
    upserts = [
        u["rtId"]
        for u in updates
        if enum_value(u.get("updateKind"), UPDATE_KINDS) == "Upsert" and u.get("rtId")
    ]
    existing = set(tenant.entities.get_many(upserts)) if upserts else set()
    for index, update in enumerate(updates):
        kind = enum_value(update.get("updateKind", "Update"), UPDATE_KINDS)
        rt_id = update.get("rtId")
        attributes = dict(update.get("attributes") or {})
        if kind == "Upsert":
            kind = "Update" if rt_id in existing else "Insert"
        if kind == "Delete":
            if not rt_id:
                raise ValidationError(f"entity update {index}: a Delete needs an rtId")
            deletes.append(rt_id)
        elif kind == "Insert":
            if not update.get("ckTypeId"):
                raise ValidationError(f"entity update {index}: an Insert needs a ckTypeId")
            creates.append(
                EntityInput(update["ckTypeId"], attributes, rt_id, update.get("rtWellKnownName"))
            )
        else:
            if not rt_id:
                raise ValidationError(
                    f"entity update {index}: an Update needs an rtId (CreateUpdateInfo@1 "
                    "rtId/rtIdPath)"
                )
            change = changes.get(rt_id)
            if change is None:
                changes[rt_id] = EntityUpdate(
                    rt_id, attributes, rt_well_known_name=update.get("rtWellKnownName")
                )
            else:
                change.attributes = {**change.attributes, **attributes}
    for index, link in enumerate(associations):
        origin, role, target = link.get("originRtId"), link.get("roleId"), link.get("targetRtId")
        if not (origin and role and target):
            raise ValidationError(
                f"association update {index} needs originRtId, roleId and targetRtId"
            )
        change = changes.setdefault(origin, EntityUpdate(origin))
        end = AssociationInput(role, target, link.get("targetCkTypeId"))
        if enum_value(link.get("modOption", "Create"), ["Create", "Delete"]) == "Delete":
            change.remove_associations = [*change.remove_associations, end]
        else:
            change.add_associations = [*change.add_associations, end]
    if creates or changes:
        tenant.entities.apply(creates=creates, updates=list(changes.values()))
    if deletes:
        tenant.entities.delete(deletes)
    return {"inserted": len(creates), "updated": len(changes), "deleted": len(deletes)}


class ApplyChanges1(Node):
    """Applies the update infos (and association updates) at ``path`` through the runtime
    service in one atomic batch, retried on a version conflict."""

    type_name = "ApplyChanges@1"
    required = ("path",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        items = _items(context.get(self.path))
        links = [i for i in items if "modOption" in i]
        updates = [i for i in items if "modOption" not in i]
        result = await env.call(apply_changes, env.require_tenant(self), updates, links)
        if "targetPath" in self.props:
            self.write(context, result)


class ApplyChanges2(Node):
    """Applies the update infos at ``entityUpdatesPath`` and the association updates at
    ``associationUpdatesPath`` through the runtime service in one atomic batch."""

    type_name = "ApplyChanges@2"
    properties: ClassVar[dict[str, Any]] = {
        "entityUpdatesPath": _PATH,
        "associationUpdatesPath": _PATH,
    }

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        if "entityUpdatesPath" not in self.props and "associationUpdatesPath" not in self.props:
            raise self.error(
                "give entityUpdatesPath and/or associationUpdatesPath", "entityUpdatesPath"
            )
        updates = _items(context.get(self.props.get("entityUpdatesPath", "$._none_")))
        links = _items(context.get(self.props.get("associationUpdatesPath", "$._none_")))
        result = await env.call(apply_changes, env.require_tenant(self), updates, links)
        if "targetPath" in self.props:
            self.write(context, result)


class UpdateRtEntityIfNewer(Node):
    """Applies the update infos at ``path`` whose ``timestamp`` is newer than the entity's
    ``timestampAttributeName`` (default: its rtChangedDateTime); others are skipped."""

    type_name = "UpdateRtEntityIfNewer@1"
    properties: ClassVar[dict[str, Any]] = {"timestampAttributeName": {"type": "string"}}
    required = ("path",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        updates = _items(context.get(self.path))
        stamp_name = self.prop("timestampAttributeName")
        ids = [u["rtId"] for u in updates if u.get("rtId")]
        stored = await env.call(tenant.entities.get_many, ids) if ids else {}
        newer = []
        for item in updates:
            update = item
            entity = stored.get(update.get("rtId"))
            if entity is None:
                continue
            current = (
                entity.attributes.get(graphql_field_name(stamp_name))
                if stamp_name
                else entity.rt_changed_datetime.isoformat()
            )
            if current is None or str(update.get("timestamp")) > str(current):
                if stamp_name:
                    update = {
                        **update,
                        "attributes": {
                            **update.get("attributes", {}),
                            stamp_name: update.get("timestamp"),
                        },
                    }
                newer.append(update)
        result = await env.call(apply_changes, tenant, newer, [])
        if "targetPath" in self.props:
            self.write(context, {**result, "skipped": len(updates) - len(newer)})


class SaveStreamDataInArchive(Node):
    """Writes the update infos at ``path`` (rtId, ckTypeId, timestamp, attributes) as stream
    points through the stream service (``ckTypeId`` overrides the infos' type)."""

    type_name = "SaveStreamDataInArchive@1"
    properties: ClassVar[dict[str, Any]] = {"ckTypeId": {"type": "string"}}
    required = ("path",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        tenant = env.require_tenant(self)
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        fixed_type = self.prop("ckTypeId")
        names: dict[str, str] = {}  # attribute name -> API field name, once per batch
        for index, item in enumerate(_items(context.get(self.path))):
            ck_type = fixed_type or item.get("ckTypeId")
            rt_id = item.get("rtId")
            if not ck_type or not rt_id:
                raise self.error(f"point {index} needs rtId and ckTypeId", "path")
            point = {"rtId": rt_id, "timestamp": item.get("timestamp")}
            for name, value in (item.get("attributes") or {}).items():
                field = names.get(name)
                if field is None:
                    field = names[name] = graphql_field_name(name)
                point[field] = value
            by_type[ck_type].append(point)
        written = 0
        for ck_type, points in by_type.items():
            streams = tenant.streams(ck_type)
            # an edge adapter's streams put the dicts into its outbox: no table for them
            batch = points if getattr(streams, "takes_rows", False) else _point_table(points)
            written += await env.call(streams.write, batch)
        if "targetPath" in self.props:
            self.write(context, {"written": written})


class ToPipelineDataEvent(Node):
    """Sends the value at ``path`` to pipeline ``targetPipelineRtId`` of the same data flow
    (through the bus); the receiver's context holds it at ``targetPath``."""

    type_name = "ToPipelineDataEvent@1"
    properties: ClassVar[dict[str, Any]] = {
        "targetPipelineRtId": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
    }
    required = ("targetPipelineRtId",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        if env.send_data_event is None:
            raise self.error(
                "this run cannot send data events (no data flow bus); run the pipeline in an "
                "adapter"
            )
        message = DataContext({})
        message.set(self.target_path, context.get(self.path))
        await env.send_data_event(self.prop("targetPipelineRtId"), message.data)


class ToWebhook(Node):
    """POSTs the value at ``path`` as JSON to ``uri`` (``apiKey`` sent as X-API-Key, within
    ``timeoutSeconds``); a JSON answer is written to ``targetPath`` when one is given."""

    type_name = "ToWebhook@1"
    properties: ClassVar[dict[str, Any]] = {
        "uri": {"type": "string", "pattern": "^https?://"},
        "apiKey": {"type": "string"},
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"]},
    }
    required = ("uri",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        import httpx

        headers = {"X-API-Key": self.prop("apiKey")} if self.prop("apiKey") else {}
        try:
            async with httpx.AsyncClient(timeout=float(self.prop("timeoutSeconds", 30))) as http:
                response = await http.request(
                    self.prop("method", "POST"),
                    self.prop("uri"),
                    json=context.get(self.path),
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            raise self.error(f"the webhook {self.prop('uri')} failed: {exc}", "uri") from exc
        if response.status_code >= 400:
            raise self.error(
                f"the webhook {self.prop('uri')} answered {response.status_code}: "
                f"{response.text[:200]}",
                "uri",
            )
        if "targetPath" in self.props:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            self.write(context, body)


NODES = [
    ApplyChanges1,
    ApplyChanges2,
    UpdateRtEntityIfNewer,
    SaveStreamDataInArchive,
    ToPipelineDataEvent,
    ToWebhook,
]
