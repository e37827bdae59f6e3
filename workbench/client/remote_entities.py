"""``RemoteTenant.entities``: the :class:`~workbench.runtime.service.EntityService` API over the
Asset Repository's REST routes (:class:`RemoteEntityService`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from workbench.client.remote_http import JSON_HEADERS, TenantHttp, dumps_json, jsonable
from workbench.client.tenant_api import EntityReads
from workbench.errors import (
    ValidationError,
)
from workbench.runtime.entity import (
    AssociationInput,
    Entity,
    EntityInput,
    EntityPage,
    EntityUpdate,
    EntityWrites,
)
from workbench.runtime.query_arguments import (
    AggregateArguments,
    FindArguments,
    aggregate_keywords,
    find_keywords,
)
from workbench.storage.base import StoredAssociation

__all__ = ["RemoteEntityService"]


def _entity(data: Mapping[str, Any]) -> Entity:
    return Entity(
        rt_id=data["rtId"],
        ck_type_id=data["ckTypeId"],
        rt_version=int(data["rtVersion"]),
        rt_creation_datetime=datetime.fromisoformat(data["rtCreationDateTime"]),
        rt_changed_datetime=datetime.fromisoformat(data["rtChangedDateTime"]),
        attributes=dict(data.get("attributes") or {}),
        rt_well_known_name=data.get("rtWellKnownName"),
        archived=bool(data.get("archived", False)),
    )


def _where_item(value: Any) -> str | dict[str, Any]:
    from workbench.runtime.filters import FieldFilter

    if isinstance(value, str):
        return value
    if isinstance(value, FieldFilter):
        return {
            "attributePath": value.attribute_path,
            "operator": str(getattr(value.operator, "value", value.operator)),
            "comparisonValue": value.comparison_value,
        }
    if isinstance(value, tuple):
        path, operator, comparison = value
        return {"attributePath": path, "operator": str(operator), "comparisonValue": comparison}
    if isinstance(value, Mapping):
        return dict(value)
    raise ValidationError(f"filter {value!r} is not a string, tuple, dict or FieldFilter")


def _association(value: AssociationInput | tuple[str, str]) -> dict[str, Any]:
    link = value if isinstance(value, AssociationInput) else AssociationInput(*value)
    return {
        "role": link.role,
        "targetRtId": link.target_rt_id,
        "targetCkTypeId": link.target_ck_type_id,
    }


class RemoteEntityService(EntityWrites):
    """The :class:`~workbench.runtime.service.EntityService` API over HTTP."""

    def __init__(self, http: TenantHttp) -> None:
        self._http = http

    # ---- reads

    def get(self, rt_id: str, *, include_archived: bool = False) -> Entity:
        data = self._http.json(
            "GET", f"/entities/{rt_id}", params={"includeArchived": include_archived}
        )
        return _entity(data)

    def get_many(
        self, rt_ids: Sequence[str], *, include_archived: bool = False
    ) -> dict[str, Entity]:
        data = self._http.json(
            "POST",
            "/entities/get",
            json={"rtIds": list(rt_ids), "includeArchived": include_archived},
        )
        return {rt_id: _entity(item) for rt_id, item in data.items()}

    def get_by_well_known_name(self, name: str) -> Entity:
        return _entity(self._http.json("GET", f"/entities/by-name/{name}"))

    def entity_types(self, rt_ids: Sequence[str]) -> dict[str, str]:
        return {rt_id: e.ck_type_id for rt_id, e in self.get_many(rt_ids).items()}

    @find_keywords
    def find(self, arguments: FindArguments) -> EntityPage:
        """A page of entities (the arguments of ``EntityService.find``)."""
        body = {
            "ckTypeId": arguments.ck_type_id,
            "where": [_where_item(w) for w in arguments.where],
            "search": arguments.search,
            "searchPaths": list(arguments.search_paths),
            "sort": [s if isinstance(s, str) else list(s) for s in arguments.sort],
            "first": arguments.first,
            "after": arguments.after,
            "rtIds": list(arguments.rt_ids) if arguments.rt_ids is not None else None,
            "includeArchived": arguments.include_archived,
            "includeTotal": arguments.include_total,
            "polymorphic": arguments.polymorphic,
        }
        data = self._http.json("POST", "/entities/find", json=body)
        return EntityPage(
            items=[_entity(item) for item in data["items"]],
            has_next_page=bool(data["pageInfo"]["hasNextPage"]),
            end_cursor=data["pageInfo"]["endCursor"],
            total_count=data.get("totalCount"),
            cursors=list(data.get("cursors") or []),
        )

    def count(self, ck_type_id: str, *, where: Iterable[Any] = ()) -> int:
        body = {"ckTypeId": ck_type_id, "where": [_where_item(w) for w in where]}
        return int(self._http.json("POST", "/entities/count", json=body)["count"])

    @aggregate_keywords
    def aggregate(self, arguments: AggregateArguments) -> Any:
        """Statistics computed by the server, as ``EntityService.aggregate`` returns them
        (``include_archived`` and ``create_index`` are in-process only)."""
        from workbench.client.remote_aggregate import remote_aggregate

        for name in ("include_archived", "create_index"):
            if getattr(arguments, name):
                raise ValidationError(
                    f"aggregate({name}=True) is not available over the remote client; leave it "
                    "out, or run the aggregation in process (workbench.open)"
                )

        def post(payload: dict[str, Any]) -> dict[str, Any]:
            body: dict[str, Any] = self._http.json(
                "POST", "/graphql", content=dumps_json(payload), headers=JSON_HEADERS
            )
            return body

        return remote_aggregate(post, _where_item, arguments)

    def navigate(self, rt_id: str, name: str, *, include_archived: bool = False) -> list[Entity]:
        data = self._http.json(
            "GET",
            f"/entities/{rt_id}/navigate/{name}",
            params={"includeArchived": include_archived},
        )
        return [_entity(item) for item in data]

    def links(
        self, rt_ids: Sequence[str], direction: Literal["outbound", "inbound"] = "outbound"
    ) -> list[StoredAssociation]:
        data = self._http.json(
            "POST", "/entities/links", json={"rtIds": list(rt_ids), "direction": direction}
        )
        return [
            StoredAssociation(
                source_rt_id=item["sourceRtId"],
                source_ck_type_id=item["sourceCkTypeId"],
                role_id=item["roleId"],
                target_rt_id=item["targetRtId"],
                target_ck_type_id=item["targetCkTypeId"],
            )
            for item in data
        ]

    # ---- writes

    def delete(
        self, rt_ids: Sequence[str] | str, *, erase: bool = False, cascade: bool = False
    ) -> list[str]:
        ids = [rt_ids] if isinstance(rt_ids, str) else list(rt_ids)
        data = self._http.json(
            "POST", "/entities/delete", json={"rtIds": ids, "erase": erase, "cascade": cascade}
        )
        return list(data["deleted"])

    def apply(
        self, *, creates: Sequence[EntityInput] = (), updates: Sequence[EntityUpdate] = ()
    ) -> list[Entity]:
        """Create and update entities in one atomic batch (on the server)."""
        body = {
            "creates": [
                {
                    "ckTypeId": c.ck_type_id,
                    "attributes": jsonable(dict(c.attributes)),
                    "rtId": c.rt_id,
                    "rtWellKnownName": c.rt_well_known_name,
                    "associations": [_association(a) for a in c.associations],
                    "keyedBy": c.keyed_by,
                }
                for c in creates
            ],
            "updates": [
                {
                    "rtId": u.rt_id,
                    "attributes": jsonable(dict(u.attributes)),
                    "rtVersion": u.rt_version,
                    "rtWellKnownName": u.rt_well_known_name,
                    "addAssociations": [_association(a) for a in u.add_associations],
                    "removeAssociations": [_association(a) for a in u.remove_associations],
                    "keyedBy": u.keyed_by,
                }
                for u in updates
            ],
        }
        data = self._http.json(
            "POST", "/entities/apply", content=dumps_json(body), headers=JSON_HEADERS
        )
        return [_entity(item) for item in data]


#: mypy checks that the remote entities read as the in-process ones (workbench.client.tenant_api)
_ENTITY_READS: type[EntityReads] = RemoteEntityService
