"""Resolvers of the runtime queries: typed lists, ``runtimeEntities`` and association fields.

Only fields that compute something have a resolver here; attributes and system fields are read
from the entity source dicts by graphql-core's default resolver (see :mod:`.batching`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
)

from workbench.errors import ValidationError
from workbench.graphql.aggregations import AGGREGATION_FIELDS, resolve_aggregations
from workbench.graphql.batching import BATCH_KEY, EntityBatch
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.direct import direct_items
from workbench.graphql.sources import SourceFactory
from workbench.query.model import Operator, Page
from workbench.runtime.filters import FieldFilter
from workbench.runtime.service import EntityService
from workbench.storage.base import StoredEntity

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "AssociationField",
    "association_resolver",
    "find_page",
    "list_resolver",
    "runtime_entities_resolver",
    "selected_fields",
]

DEFAULT_PAGE_SIZE = 100
#: Largest page a single list field returns; page through bigger results with ``after``.
MAX_PAGE_SIZE = 10_000

Resolver = Callable[..., Any]


def selected_fields(info: Info) -> set[str]:
    """Names of the fields selected directly under the current field (through fragments)."""
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = info.fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set)

    for node in info.field_nodes:
        walk(node.selection_set)
    return names


def _page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise ValidationError(
            f"first={first} is out of range; ask for 0 to {MAX_PAGE_SIZE} items and page "
            "through larger results with `after`"
        )
    return first


def _field_filters(raw: Sequence[Mapping[str, Any]] | None) -> list[FieldFilter]:
    return [
        FieldFilter(item["attributePath"], Operator(item["operator"]), item.get("comparisonValue"))
        for item in raw or ()
    ]


def _rt_ids(args: Mapping[str, Any]) -> list[str] | None:
    ids: list[str] | None = None
    if args.get("rtIds") is not None:
        ids = list(args["rtIds"])
    if args.get("rtId") is not None:
        ids = [args["rtId"]] if ids is None else [i for i in ids if i == args["rtId"]]
    return ids


def find_page(
    service: EntityService,
    ck_type_id: str,
    args: Mapping[str, Any],
    *,
    include_total: bool,
    first: int | None,
    rt_ids: Sequence[str] | None = None,
    item_cursors: bool = True,
) -> Page[StoredEntity]:
    """Run a list query from GraphQL list arguments (``fieldFilter``, ``sortOrder``, ...).

    The service translates the arguments (names, enum values, paths) into a store query; the
    page comes from the store as is and :class:`SourceFactory` turns it into sources.
    ``item_cursors=False``: only the page's end cursor is needed (no ``edges`` selected).
    """
    search = args.get("searchFilter")
    query = service.build_query(
        ck_type_id,
        where=_field_filters(args.get("fieldFilter")),
        search=search["searchTerm"] if search else None,
        search_paths=list(search.get("attributePaths") or ()) if search else (),
        sort=[(s["attributePath"], bool(s.get("sortOrder"))) for s in args.get("sortOrder") or ()],
        first=first,
        after=args.get("after"),
        rt_ids=rt_ids if rt_ids is not None else _rt_ids(args),
        include_total=include_total,
    )
    if not item_cursors:
        query = replace(query, item_cursors=False)
    return service.store.find(query)


def connection_source(
    page: Page[StoredEntity], names: set[str], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """The dict a ``<Type>Connection`` resolves from."""
    out: dict[str, Any] = {
        "totalCount": page.total_count,
        "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.end_cursor},
        "items": sources,
    }
    if "edges" in names:
        out["edges"] = [
            {"cursor": cursor, "node": item}
            for cursor, item in zip(page.cursors, sources, strict=False)
        ]
    return out


def list_resolver(ck_type_id: str, factory: SourceFactory) -> Resolver:
    """``runtime { rt<Type>(...) }``: a page of entities of the type and its subtypes."""

    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        context: GraphQLContext = info.context
        return _connection(context, ck_type_id, args, selected_fields(info), factory, info)

    return resolve


def _connection(
    context: GraphQLContext,
    ck_type_id: str,
    args: Mapping[str, Any],
    names: set[str],
    factory: SourceFactory,
    info: Info,
) -> dict[str, Any]:
    """A list's connection: the page when anything of it is selected, and the aggregations."""
    statistics = resolve_aggregations(
        context, ck_type_id, args, names, _field_filters(args.get("fieldFilter")), _rt_ids(args)
    )
    if statistics and not names - AGGREGATION_FIELDS - {"__typename"}:
        return statistics  # only statistics asked for: no page to read
    page = find_page(
        context.entities,
        ck_type_id,
        args,
        include_total="totalCount" in names,
        first=_page_size(args.get("first")),
        item_cursors="edges" in names,
    )
    items: list[dict[str, Any]] | None = direct_items(info, factory, ck_type_id, page.items)
    if items is None:
        items = factory.sources(page.items)
    return {**connection_source(page, names, items), **statistics}


def runtime_entities_resolver(factory: SourceFactory) -> Resolver:
    """``runtime { runtimeEntities(ckTypeId: ...) }``: any type, by id (default: every entity)."""

    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        context: GraphQLContext = info.context
        ck_type_id = args.get("ckTypeId") or "System/Entity"
        context.tenant.model.type(ck_type_id)  # NotFound with a hint when unknown
        return _connection(context, ck_type_id, args, selected_fields(info), factory, info)

    return resolve


@dataclass(frozen=True)
class AssociationField:
    """An association field: a role end seen from the entity type that has the field."""

    field_name: str
    role_id: str
    direction: Literal["outbound", "inbound"]
    other_type_id: str
    many: bool


def _linked(
    service: EntityService, batch: EntityBatch, field: AssociationField
) -> dict[str, list[str]]:
    """rtIds at the other end of ``field``, per entity of the batch (store order)."""
    out: dict[str, list[str]] = {}
    outbound = field.direction == "outbound"
    for own, links in batch.links(service, field.direction).items():
        others = [
            link.target_rt_id if outbound else link.source_rt_id
            for link in links
            if link.role_id == field.role_id
        ]
        if others:
            out[own] = others
    return out


def _load_single(
    service: EntityService, batch: EntityBatch, field: AssociationField, factory: SourceFactory
) -> dict[str, dict[str, Any]]:
    role_id = field.role_id
    outbound = field.direction == "outbound"
    linked: dict[str, list[str]] = {}
    wanted: set[str] = set()
    for own, links in batch.links(service, field.direction).items():
        for link in links:
            if link.role_id == role_id:
                other = link.target_rt_id if outbound else link.source_rt_id
                wanted.add(other)
                mine = linked.get(own)
                if mine is None:
                    linked[own] = [other]
                else:
                    mine.append(other)
    found = service.store.get_many(sorted(wanted), include_archived=False) if wanted else {}
    by_id = {s["rtId"]: s for s in factory.sources(list(found.values()))}
    out: dict[str, dict[str, Any]] = {}
    for own, others in linked.items():
        for other in others:  # the first linked entity that exists (store order)
            match = by_id.get(other)
            if match is not None:
                out[own] = match
                break
    return out


def _load_connections(
    info: Info,
    batch: EntityBatch,
    field: AssociationField,
    args: dict[str, Any],
    factory: SourceFactory,
) -> dict[str, dict[str, Any]]:
    context: GraphQLContext = info.context
    service = context.entities
    names = selected_fields(info)
    first = _page_size(args.get("first"))
    linked = _linked(service, batch, field)
    candidates = {other for others in linked.values() for other in others}
    requested = _rt_ids(args)
    if requested is not None:
        candidates &= {r.lower() for r in requested}
    if not candidates:
        return {}
    # One query over every linked entity of the batch; keyset paging then applies per entity
    # (a cursor is a sort position, so `after` means the same for each of them).
    page = find_page(
        service,
        field.other_type_id,
        args,
        include_total=False,
        first=None,
        rt_ids=sorted(candidates),
    )
    sources = factory.sources(page.items)
    totals: dict[str, int] | None = None
    if "totalCount" in names and args.get("after"):
        unpaged = find_page(
            service,
            field.other_type_id,
            {**args, "after": None},
            include_total=False,
            first=None,
            rt_ids=sorted(candidates),
        )
        totals = {}
        matched = {e.rt_id for e in unpaged.items}
        for own, others in linked.items():
            totals[own] = len(matched.intersection(others))
    out: dict[str, dict[str, Any]] = {}
    for own, others in linked.items():
        mine = set(others)
        picked = [i for i, entity in enumerate(page.items) if entity.rt_id in mine]
        shown = picked[:first]
        items = [sources[i] for i in shown]
        cursors = [page.cursors[i] for i in shown] if page.cursors else []
        connection: dict[str, Any] = {
            "totalCount": totals[own] if totals is not None else len(picked),
            "pageInfo": {
                "hasNextPage": len(picked) > first,
                "endCursor": cursors[-1] if cursors else None,
            },
            "items": items,
        }
        if "edges" in names:
            connection["edges"] = [
                {"cursor": c, "node": n} for c, n in zip(cursors, items, strict=False)
            ]
        out[own] = connection
    return out


_EMPTY_CONNECTION: dict[str, Any] = {
    "totalCount": 0,
    "pageInfo": {"hasNextPage": False, "endCursor": None},
    "items": [],
    "edges": [],
}


def association_resolver(field: AssociationField, factory: SourceFactory) -> Resolver:
    """Resolver of an association field, loading it for the whole batch of the source entity."""
    if not field.many:

        def resolve_one(source: Mapping[str, Any], info: Info) -> Any:
            batch: EntityBatch = source[BATCH_KEY]
            service = info.context.entities
            # the field node identifies field and arguments; the document keeps it alive
            loaded = batch.loaded(
                id(info.field_nodes[0]), lambda: _load_single(service, batch, field, factory)
            )
            return loaded.get(source["rtId"])

        def peek(source: Mapping[str, Any], node_id: int) -> Any:
            loaded = source[BATCH_KEY].peek(node_id)
            return Undefined if loaded is Undefined else loaded.get(source["rtId"])

        resolve_one.peek = peek  # type: ignore[attr-defined]
        return resolve_one

    def resolve_many(source: Mapping[str, Any], info: Info, **args: Any) -> Any:
        batch: EntityBatch = source[BATCH_KEY]
        loaded = batch.loaded(
            id(info.field_nodes[0]), lambda: _load_connections(info, batch, field, args, factory)
        )
        return loaded.get(source["rtId"], _EMPTY_CONNECTION)

    return resolve_many
