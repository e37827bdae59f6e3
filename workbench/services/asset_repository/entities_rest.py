"""REST endpoints for the remote SDK's entity calls under ``/tenants/{tenantId}/entities/...``.

The same :class:`~workbench.runtime.service.EntityService` methods, one endpoint each. Part of
:mod:`.rest`, which mounts the router; every handler does its work in a worker
thread (the stores are synchronous).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from workbench.errors import ValidationError
from workbench.messaging.base import EntityEvent, UpdateType, entity_topic
from workbench.runtime.entity import AssociationInput, Entity, EntityInput, EntityUpdate
from workbench.services.access import (
    EntityWriteAccess,
    ReadAccess,
    TenantAccess,
    service_state,
)
from workbench.services.asset_repository.heavy_request import heavy_request

__all__ = ["HEAVY_PAGE_ITEMS", "entity_json", "router"]

#: a page of more entities than this (or of all: ``first: null``) counts as a heavy request
HEAVY_PAGE_ITEMS = 10_000

router = APIRouter(prefix="/tenants/{tenantId}")


def entity_json(entity: Entity) -> dict[str, Any]:
    """An entity for the wire: system fields, and attributes under ``attributes``."""
    return {
        "rtId": entity.rt_id,
        "ckTypeId": entity.ck_type_id,
        "rtWellKnownName": entity.rt_well_known_name,
        "rtVersion": entity.rt_version,
        "rtCreationDateTime": entity.rt_creation_datetime.isoformat(),
        "rtChangedDateTime": entity.rt_changed_datetime.isoformat(),
        "archived": entity.archived,
        "attributes": entity.attributes,
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False),
        status,
        media_type="application/json",
    )


class FindRequest(BaseModel):
    """``EntityService.find`` arguments (``where`` items: strings or FieldFilterInput dicts)."""

    ckTypeId: str
    where: list[str | dict[str, Any]] = Field(default_factory=list)
    search: str | None = None
    searchPaths: list[str] = Field(default_factory=lambda: ["name"])
    sort: list[str | tuple[str, bool]] = Field(default_factory=list)
    first: int | None = 100
    after: str | None = None
    rtIds: list[str] | None = None
    includeArchived: bool = False
    includeTotal: bool = False
    polymorphic: bool = True


def _find(access: TenantAccess, query: FindRequest) -> dict[str, Any]:
    page = access.tenant.entities.find(
        query.ckTypeId,
        where=query.where,
        search=query.search,
        search_paths=query.searchPaths,
        sort=query.sort,
        first=query.first,
        after=query.after,
        rt_ids=query.rtIds,
        include_archived=query.includeArchived,
        include_total=query.includeTotal,
        polymorphic=query.polymorphic,
    )
    return {
        "items": [entity_json(e) for e in page.items],
        "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.end_cursor},
        "totalCount": page.total_count,
        "cursors": page.cursors,
    }


@router.post("/entities/find", tags=["entities"], summary="A page of entities of a type")
async def find_entities(access: ReadAccess, query: FindRequest) -> Response:
    if query.first is None or query.first > HEAVY_PAGE_ITEMS:  # a large page: a heavy request
        with heavy_request(access, "this large page of entities"):
            return _json(await run_in_threadpool(_find, access, query))
    return _json(await run_in_threadpool(_find, access, query))


class CountRequest(BaseModel):
    ckTypeId: str
    where: list[str | dict[str, Any]] = Field(default_factory=list)


@router.post("/entities/count", tags=["entities"], summary="Number of entities matching")
async def count_entities(access: ReadAccess, query: CountRequest) -> dict[str, int]:
    count = await run_in_threadpool(access.tenant.entities.count, query.ckTypeId, where=query.where)
    return {"count": count}


class GetManyRequest(BaseModel):
    rtIds: list[str]
    includeArchived: bool = False


@router.post("/entities/get", tags=["entities"], summary="Entities by rtId (missing ones left out)")
async def get_entities(access: ReadAccess, query: GetManyRequest) -> Response:
    found = await run_in_threadpool(
        access.tenant.entities.get_many, query.rtIds, include_archived=query.includeArchived
    )
    return _json({rt_id: entity_json(e) for rt_id, e in found.items()})


@router.get("/entities/{rtId}", tags=["entities"], summary="One entity")
async def get_entity(
    access: ReadAccess,
    rtId: str,
    includeArchived: bool = Query(False),
) -> Response:
    entity = await run_in_threadpool(
        access.tenant.entities.get, rtId, include_archived=includeArchived
    )
    return _json(entity_json(entity))


@router.get(
    "/entities/by-name/{name}", tags=["entities"], summary="The entity with an rtWellKnownName"
)
async def get_by_well_known_name(access: ReadAccess, name: str) -> Response:
    entity = await run_in_threadpool(access.tenant.entities.get_by_well_known_name, name)
    return _json(entity_json(entity))


@router.get(
    "/entities/{rtId}/navigate/{name}",
    tags=["entities"],
    summary="Entities linked through an association end (outbound or inbound name)",
)
async def navigate(
    access: ReadAccess,
    rtId: str,
    name: str,
    includeArchived: bool = Query(False),
) -> Response:
    entities = await run_in_threadpool(
        access.tenant.entities.navigate, rtId, name, include_archived=includeArchived
    )
    return _json([entity_json(e) for e in entities])


class LinksRequest(BaseModel):
    rtIds: list[str]
    direction: Literal["outbound", "inbound"] = "outbound"


@router.post("/entities/links", tags=["entities"], summary="Associations of entities")
async def links(access: ReadAccess, query: LinksRequest) -> Response:
    found = await run_in_threadpool(
        access.tenant.entities.links,
        query.rtIds,
        query.direction,
    )
    return _json(
        [
            {
                "sourceRtId": link.source_rt_id,
                "sourceCkTypeId": link.source_ck_type_id,
                "roleId": link.role_id,
                "targetRtId": link.target_rt_id,
                "targetCkTypeId": link.target_ck_type_id,
            }
            for link in found
        ]
    )


class AssociationBody(BaseModel):
    role: str
    targetRtId: str
    targetCkTypeId: str | None = None

    def to_input(self) -> AssociationInput:
        return AssociationInput(self.role, self.targetRtId, self.targetCkTypeId)


class CreateBody(BaseModel):
    ckTypeId: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    rtId: str | None = None
    rtWellKnownName: str | None = None
    associations: list[AssociationBody] = Field(default_factory=list)
    keyedBy: str = "name"


class UpdateBody(BaseModel):
    rtId: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    rtVersion: int | None = None
    rtWellKnownName: str | None = None
    addAssociations: list[AssociationBody] = Field(default_factory=list)
    removeAssociations: list[AssociationBody] = Field(default_factory=list)
    keyedBy: str = "name"


class ApplyRequest(BaseModel):
    creates: list[CreateBody] = Field(default_factory=list)
    updates: list[UpdateBody] = Field(default_factory=list)


def _keyed_by(value: str) -> Any:
    if value not in {"name", "id"}:
        raise ValidationError(f"keyedBy {value!r} is invalid; use 'name' or 'id'")
    return value


@router.post(
    "/entities/apply",
    tags=["entities"],
    summary="Create and update entities in one atomic batch",
)
async def apply_entities(
    request: Request, access: EntityWriteAccess, body: ApplyRequest
) -> Response:
    creates = [
        EntityInput(
            c.ckTypeId,
            c.attributes,
            c.rtId,
            c.rtWellKnownName,
            [a.to_input() for a in c.associations],
            keyed_by=_keyed_by(c.keyedBy),
        )
        for c in body.creates
    ]
    updates = [
        EntityUpdate(
            u.rtId,
            u.attributes,
            u.rtVersion,
            u.rtWellKnownName,
            [a.to_input() for a in u.addAssociations],
            [a.to_input() for a in u.removeAssociations],
            keyed_by=_keyed_by(u.keyedBy),
        )
        for u in body.updates
    ]
    result = await run_in_threadpool(access.tenant.entities.apply, creates=creates, updates=updates)
    items = [entity_json(e) for e in result]
    bus = service_state(request).bus
    topic = entity_topic(access.tenant.id)
    for index, data in enumerate(items):
        kind = UpdateType.INSERT if index < len(creates) else UpdateType.UPDATE
        bus.publish(topic, _event(access, kind, data))
    return _json(items)


def _event(access: TenantAccess, kind: UpdateType, data: Mapping[str, Any]) -> EntityEvent:
    flat = {k: v for k, v in data.items() if k != "attributes"}
    flat.update(data.get("attributes") or {})
    return EntityEvent(access.tenant.id, kind, str(data["rtId"]), str(data["ckTypeId"]), flat)


class DeleteRequest(BaseModel):
    rtIds: list[str]
    erase: bool = False
    cascade: bool = False


def _delete(access: TenantAccess, body: DeleteRequest) -> tuple[list[str], dict[str, Entity]]:
    service = access.tenant.entities
    before = service.get_many(body.rtIds, include_archived=True)
    deleted = service.delete(body.rtIds, erase=body.erase, cascade=body.cascade)
    missing = [rt_id for rt_id in deleted if rt_id not in before]
    if missing:
        before.update(service.get_many(missing, include_archived=True))
    return deleted, before


@router.post(
    "/entities/delete",
    tags=["entities"],
    summary="Archive (default) or erase entities; cascade on request",
)
async def delete_entities(
    request: Request, access: EntityWriteAccess, body: DeleteRequest
) -> Response:
    deleted, known = await run_in_threadpool(_delete, access, body)
    bus = service_state(request).bus
    topic = entity_topic(access.tenant.id)
    for rt_id in deleted:
        if rt_id in known:
            bus.publish(topic, _event(access, UpdateType.DELETE, entity_json(known[rt_id])))
    return _json({"deleted": deleted})
