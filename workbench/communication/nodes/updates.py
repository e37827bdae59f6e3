"""Update nodes: build entity and association update infos that the load nodes apply.

An *update info* is ``{"updateKind": Insert|Update|Upsert|Delete, "rtId", "ckTypeId",
"timestamp", "attributes": {AttributeName: value}}``; an *association update* is
``{"modOption": Create|Delete, "originRtId", "originCkTypeId", "roleId", "targetRtId",
"targetCkTypeId"}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.schema import enum_schema, enum_value
from workbench.runtime.ids import new_rt_id

__all__ = ["NODES", "UPDATE_KINDS", "VALUE_TYPES", "convert_value"]

UPDATE_KINDS = ["Insert", "Update", "Upsert", "Delete"]
VALUE_TYPES = [
    "String",
    "Int",
    "Int64",
    "Double",
    "Boolean",
    "DateTime",
    "DateTimeOffset",
    "Enum",
    "StringArray",
    "IntArray",
    "Record",
    "RecordArray",
    "TimeSpan",
]
_PATH = {"type": "string"}
_RT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}


def convert_value(value: Any, value_type: str) -> Any:
    """``value`` as an attribute of ``value_type`` (Double → float, Int → int, ...)."""
    if value is None:
        return None
    kind = enum_value(value_type, VALUE_TYPES)
    if kind == "Double":
        return float(value)
    if kind in ("Int", "Int64"):
        return int(value)
    if kind == "Boolean":
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)
    if kind == "String":
        return value if isinstance(value, str) else str(value)
    if kind in ("DateTime", "DateTimeOffset") and isinstance(value, datetime):
        return value.isoformat()
    return value


class CreateUpdateInfo(Node):
    """Builds one entity update info: ``updateKind``, the entity (``rtId``, ``rtIdPath`` or
    ``generateRtId``), ``ckTypeId``, ``timestampPath`` and ``attributeUpdates`` (each
    ``attributeName``, ``attributeValueType``, ``value`` or ``valuePath``); writes it to
    ``targetPath`` (use ``targetValueKind: Array`` and ``targetValueWriteMode: Append`` to
    collect several)."""

    type_name = "CreateUpdateInfo@1"
    properties: ClassVar[dict[str, Any]] = {
        "updateKind": enum_schema(UPDATE_KINDS),
        "ckTypeId": {"type": "string"},
        "rtId": _RT_ID,
        "rtIdPath": _PATH,
        "generateRtId": {"type": "boolean"},
        "rtWellKnownName": {"type": "string"},
        "timestampPath": _PATH,
        "attributeUpdates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attributeName": {"type": "string"},
                    "attributeValueType": enum_schema(VALUE_TYPES),
                    "value": {},
                    "valuePath": {"type": "string"},
                },
                "required": ["attributeName"],
                "additionalProperties": False,
            },
        },
    }
    required = ("ckTypeId", "targetPath")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        kind = self.enum("updateKind", UPDATE_KINDS, "Update")
        rt_id = self.prop("rtId")
        if rt_id is None and "rtIdPath" in self.props:
            rt_id = context.get(self.prop("rtIdPath"))
            if rt_id is None:
                raise self.error(
                    f"no rtId at {self.prop('rtIdPath')!r}: the entity was not found in the "
                    "data context (check the path, or use generateRtId for new entities)",
                    "rtIdPath",
                )
        if rt_id is None and self.prop("generateRtId"):
            rt_id = new_rt_id()
        if rt_id is None and kind != "Insert":
            raise self.error(f"an {kind} needs rtId, rtIdPath or generateRtId", "rtId")
        timestamp = None
        if "timestampPath" in self.props:
            timestamp = context.get(self.prop("timestampPath"))
        attributes: dict[str, Any] = {}
        for index, update in enumerate(self.prop("attributeUpdates") or []):
            if "valuePath" in update:
                value = context.get(update["valuePath"])
            else:
                value = update.get("value")
            try:
                attributes[update["attributeName"]] = convert_value(
                    value, update.get("attributeValueType", "String")
                )
            except (TypeError, ValueError) as exc:
                raise self.error(
                    f"{value!r} is not a {update.get('attributeValueType')}: {exc}",
                    f"attributeUpdates[{index}]",
                ) from exc
        info: dict[str, Any] = {
            "updateKind": kind,
            "rtId": rt_id,
            "ckTypeId": self.prop("ckTypeId"),
            "timestamp": timestamp or datetime.now(UTC).isoformat(),
            "attributes": attributes,
        }
        if "rtWellKnownName" in self.props:
            info["rtWellKnownName"] = self.prop("rtWellKnownName")
        self.write(context, info)


class CreateAssociationUpdate(Node):
    """Builds one association update: ``modOption`` (Create or Delete), ``roleId``, the origin
    (``originRtId``/``originRtIdPath``, ``originCkTypeId``) and the target (``targetRtId``/
    ``targetRtIdPath``, ``targetCkTypeId``); writes it to ``targetPath``."""

    type_name = "CreateAssociationUpdate@1"
    properties: ClassVar[dict[str, Any]] = {
        "modOption": enum_schema(["Create", "Delete"]),
        "roleId": {"type": "string"},
        "originRtId": _RT_ID,
        "originRtIdPath": _PATH,
        "originCkTypeId": {"type": "string"},
        "targetRtId": _RT_ID,
        "targetRtIdPath": _PATH,
        "targetCkTypeId": {"type": "string"},
    }
    required = ("roleId", "targetPath")

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        def rt_id(end: str) -> str:
            value = self.prop(f"{end}RtId")
            if value is None and f"{end}RtIdPath" in self.props:
                value = context.get(self.prop(f"{end}RtIdPath"))
            if not isinstance(value, str):
                raise self.error(f"no {end} rtId: set {end}RtId or {end}RtIdPath", f"{end}RtId")
            return value

        self.write(
            context,
            {
                "modOption": self.enum("modOption", ["Create", "Delete"], "Create"),
                "roleId": self.prop("roleId"),
                "originRtId": rt_id("origin"),
                "originCkTypeId": self.prop("originCkTypeId"),
                "targetRtId": rt_id("target"),
                "targetCkTypeId": self.prop("targetCkTypeId"),
            },
        )


class FilterLatestUpdateInfo(Node):
    """Keeps, of the update infos at ``path``, the latest (by ``timestamp``) per entity; writes
    them to ``targetPath`` (default: back to ``path``)."""

    type_name = "FilterLatestUpdateInfo@1"
    required = ("path",)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        items = context.get(self.path) or []
        if not isinstance(items, list):
            items = [items]
        latest: dict[Any, dict[str, Any]] = {}
        for item in items:
            key = (item.get("ckTypeId"), item.get("rtId"))
            kept = latest.get(key)
            if kept is None or str(item.get("timestamp") or "") >= str(kept.get("timestamp") or ""):
                latest[key] = item
        target = self.props.get("targetPath", self.path)
        self.write(context, list(latest.values()), target)


NODES = [CreateUpdateInfo, CreateAssociationUpdate, FilterLatestUpdateInfo]
