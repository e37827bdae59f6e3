"""Entity aggregations on MongoDB and FerretDB, computed by the server.

Two plans, chosen by :meth:`MongoEntityStore.supports_aggregation_pipeline`:

- **One pipeline** (MongoDB): ``$match`` (the selection :meth:`find` uses), a ``$lookup`` of the
  links and one of their far ends per association hop (archived ends dropped, then ``$unwind``
  keeping entities without one), ``$group`` with ``$avg``/``$sum``/``$min``/``$max``, ``$sort``,
  keyset ``$match`` and ``$limit`` on the groups.
- **In steps** (FerretDB v1, which has neither ``$lookup`` nor accumulators beyond ``$sum`` nor
  conditional expressions): a group key across associations is resolved first (the links of the
  role, then the far ends' values, as ids and key values only), which splits the entities into
  partitions (``_id $in [...]``, the rest ``$nin``); each partition is grouped by its own keys
  with ``$sum`` (counts, sums, numeric counts for averages, one ``$match``-ed pipeline per
  measured path), and ``min``/``max`` of each group on the returned page is one indexed
  ``find().sort().limit(1)``. Rows of the partitions merge by key; the group rows (never the
  entities) are sorted and paged here. Measures across associations need the one-pipeline plan.

The ``parent->`` hop (``System/ParentChild`` outbound) reads the parent id kept on the entity
(``_wbParent``, :mod:`workbench.storage.parents`) once the store's back-fill is complete: one
``$lookup`` of the parents by id in the pipeline; in steps, the partitions are sets of parent
ids (``_wbParent $in [...]``, a handful of parents) instead of sets of entity ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from pymongo.collection import Collection

from workbench.errors import ValidationError
from workbench.query.aggregation import (
    MEASURE_FUNCTIONS,
    AggregatePath,
    AggregateRow,
    AggregationResult,
    EntityAggregation,
    Hop,
    Measure,
)
from workbench.query.cursor import decode_cursor
from workbench.query.model import EntityQuery
from workbench.storage.mongo_codec import _PARENT, Document, _decode, _encode
from workbench.storage.mongo_query import _and, _field, _value_at
from workbench.storage.parents import PARENT_HOP

__all__ = ["aggregate_mongo"]


class _Store(Protocol):
    """What an aggregation needs of :class:`workbench.storage.mongo.MongoEntityStore` (a
    protocol, so this module does not import the store that imports it)."""

    @property
    def _entities(self) -> Collection[Document]: ...

    @property
    def _associations(self) -> Collection[Document]: ...

    def supports_aggregation_pipeline(self) -> bool: ...

    def _errors(self, action: str) -> AbstractContextManager[None]: ...

    def _selection(self, query: EntityQuery) -> Document: ...

    def _parent_field_ready(self) -> bool: ...


def _order(value: Any) -> tuple[int, Any]:
    """Python's order of stored group keys as the servers (and SQLite) sort them."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, str):
        return (2, value)
    return (3, repr(value))


def aggregate_mongo(
    store: _Store, aggregation: EntityAggregation, *, stepwise: bool | None = None
) -> AggregationResult:
    """Run ``aggregation`` on ``store``; ``stepwise`` forces a plan (None: what the server
    supports)."""
    if aggregation.first is not None and aggregation.first < 0:
        raise ValidationError(f"first must be 0 or more, got {aggregation.first}")
    for measure in aggregation.measures:
        if measure.function not in MEASURE_FUNCTIONS:
            raise ValidationError(
                f"unknown aggregate function {measure.function!r}; use one of "
                f"{', '.join(MEASURE_FUNCTIONS)}"
            )
    if stepwise is None:
        stepwise = not store.supports_aggregation_pipeline()
    paths = [*aggregation.group_by, *(m.target for m in aggregation.measures)]
    parent_field = any(PARENT_HOP in p.hops for p in paths) and store._parent_field_ready()
    with store._errors("aggregating entities"):
        selection = store._selection(aggregation.query)
        if stepwise:
            return _Steps(store, aggregation, selection, parent_field).run()
        return _pipeline(store, aggregation, selection, parent_field)


def _page(
    rows: list[AggregateRow], aggregation: EntityAggregation, grouped: bool
) -> AggregationResult:
    """Rows (keys still encoded) sorted, after the cursor, cut to ``first``; keys decoded."""
    if not grouped:
        return AggregationResult(rows=rows)
    rows.sort(key=lambda r: tuple(_order(k) for k in r.keys))
    if aggregation.after:
        start = tuple(
            _order(_encode(v)) for v in decode_cursor(aggregation.after, len(aggregation.group_by))
        )
        rows = [r for r in rows if tuple(_order(k) for k in r.keys) > start]
    has_next = aggregation.first is not None and len(rows) > aggregation.first
    if has_next:
        rows = rows[: aggregation.first]
    return AggregationResult(rows=rows, has_next_page=has_next)


def _finish(result: AggregationResult, grouped: bool) -> AggregationResult:
    for row in result.rows:
        row.keys = tuple(_decode(k) for k in row.keys)
        row.values = tuple(_decode(v) for v in row.values)
    if grouped and result.rows:
        result.end_cursor = result.rows[-1].cursor
    return result


# -- one pipeline (MongoDB) ----------------------------------------------------------------------


class _Lookups:
    """``$lookup`` stages for association hops, one far-end field per distinct hop prefix."""

    def __init__(self, parent_field: bool = False) -> None:
        self.prefixes: dict[tuple[Hop, ...], str] = {(): ""}
        self.stages: list[Document] = []
        self.parent_field = parent_field

    def prefix(self, hops: tuple[Hop, ...]) -> str:
        if hops in self.prefixes:
            return self.prefixes[hops]
        near = self.prefix(hops[:-1])
        role_id, direction = hops[-1]
        number = len(self.prefixes)
        links, ends = f"__wbl{number}", f"__wbt{number}"
        near_end, far_end = ("sourceRtId", "targetRtId")
        if direction == "inbound":
            near_end, far_end = far_end, near_end
        if self.parent_field and hops[-1] == PARENT_HOP:
            lookup: list[Document] = [
                {
                    "$lookup": {
                        "from": "entities",
                        "localField": near + _PARENT,
                        "foreignField": "_id",
                        "as": ends,
                    }
                }
            ]
        else:
            lookup = self._links(near, role_id, near_end, far_end, links, ends)
        self.stages += [
            *lookup,
            {
                "$set": {
                    ends: {
                        "$filter": {
                            "input": f"${ends}",
                            "cond": {"$eq": ["$$this.archived", False]},
                        }
                    }
                }
            },
            {"$unwind": {"path": f"${ends}", "preserveNullAndEmptyArrays": True}},
            {"$unset": links},
        ]
        self.prefixes[hops] = ends + "."
        return ends + "."

    @staticmethod
    def _links(
        near: str, role_id: str, near_end: str, far_end: str, links: str, ends: str
    ) -> list[Document]:
        """The ``$lookup`` of the links of a hop and of their far ends."""
        return [
            {
                "$lookup": {
                    "from": "associations",
                    "localField": near + "_id",
                    "foreignField": near_end,
                    "as": links,
                }
            },
            {
                "$set": {
                    links: {
                        "$filter": {
                            "input": f"${links}",
                            "cond": {"$eq": ["$$this.roleId", role_id]},
                        }
                    }
                }
            },
            {
                "$lookup": {
                    "from": "entities",
                    "localField": f"{links}.{far_end}",
                    "foreignField": "_id",
                    "as": ends,
                }
            },
        ]

    def field(self, target: AggregatePath) -> str:
        return self.prefix(tuple(target.hops)) + _field(target.path)


_ACCUMULATORS = {"avg": "$avg", "sum": "$sum", "min": "$min", "max": "$max"}


def _accumulator(measure: Measure, field: str) -> Document:
    if measure.function == "count":
        return {"$sum": {"$cond": [{"$eq": [{"$ifNull": [f"${field}", None]}, None]}, 0, 1]}}
    if measure.function == "sum":  # $sum of no numbers is 0; the contract says None
        return {"$sum": f"${field}"}
    return {_ACCUMULATORS[measure.function]: f"${field}"}


def _pipeline(
    store: _Store, aggregation: EntityAggregation, selection: Document, parent_field: bool = False
) -> AggregationResult:
    lookups = _Lookups(parent_field)
    keys = [lookups.field(path) for path in aggregation.group_by]
    group: Document = {
        "_id": {f"g{i}": {"$ifNull": [f"${field}", None]} for i, field in enumerate(keys)},
        "n": {"$sum": 1},
    }
    for i, measure in enumerate(aggregation.measures):
        field = lookups.field(measure.target)
        group[f"m{i}"] = _accumulator(measure, field)
        if measure.function == "sum":
            group[f"c{i}"] = {"$sum": {"$cond": [{"$isNumber": f"${field}"}, 1, 0]}}
    stages: list[Document] = [{"$match": selection}, *lookups.stages, {"$group": group}]
    if keys:
        stages.append({"$sort": {f"_id.g{i}": 1 for i in range(len(keys))}})
        if aggregation.after:
            values = decode_cursor(aggregation.after, len(keys))
            stages.append({"$match": _group_keyset([_encode(v) for v in values])})
        if aggregation.first is not None:
            stages.append({"$limit": aggregation.first + 1})
    documents = list(store._entities.aggregate(stages, allowDiskUse=True))
    rows = []
    for doc in documents:
        values = []
        for i, measure in enumerate(aggregation.measures):
            value = doc.get(f"m{i}")
            if measure.function == "sum" and not doc.get(f"c{i}"):
                value = None
            values.append(value)
        rows.append(
            AggregateRow(
                tuple(doc["_id"].get(f"g{i}") for i in range(len(keys))),
                int(doc["n"]),
                tuple(values),
            )
        )
    if not keys and not rows:
        rows = [_empty_row(aggregation)]
    has_next = bool(keys) and aggregation.first is not None and len(rows) > aggregation.first
    if has_next:
        rows = rows[: aggregation.first]
    return _finish(AggregationResult(rows=rows, has_next_page=has_next), bool(keys))


def _group_keyset(values: Sequence[Any]) -> Document:
    disjuncts: list[Document] = []
    equal: list[Document] = []
    for i, value in enumerate(values):
        field = f"_id.g{i}"
        after = {field: {"$ne": None}} if value is None else {field: {"$gt": value}}
        disjuncts.append(_and([*equal, after]))
        equal.append({field: value})
    return disjuncts[0] if len(disjuncts) == 1 else {"$or": disjuncts}


def _empty_row(aggregation: EntityAggregation) -> AggregateRow:
    values = tuple(0 if m.function == "count" else None for m in aggregation.measures)
    return AggregateRow((), 0, values)


# -- in steps (FerretDB v1) ----------------------------------------------------------------------


class _Steps:
    def __init__(
        self,
        store: _Store,
        aggregation: EntityAggregation,
        selection: Document,
        parent_field: bool = False,
    ) -> None:
        self.store = store
        self.aggregation = aggregation
        self.selection = selection
        self.parent_field = parent_field
        for measure in aggregation.measures:
            if measure.target.hops:
                raise ValidationError(
                    f"{measure.function} of {measure.label!r} crosses an association, and this "
                    "server (FerretDB v1) cannot join in an aggregation ($lookup); group by the "
                    f"association path instead, or aggregate {measure.label!r} on the other type"
                )
        self.local = [i for i, p in enumerate(aggregation.group_by) if not p.hops]
        self.remote = [i for i, p in enumerate(aggregation.group_by) if p.hops]

    # partitions: (values of the remote keys by position, id constraint)
    def _partitions(self) -> list[tuple[dict[int, Any], Document]]:
        if not self.remote:
            return [({}, {})]
        chains: dict[tuple[Hop, ...], list[int]] = {}
        for i in self.remote:
            chains.setdefault(tuple(self.aggregation.group_by[i].hops), []).append(i)
        if self.parent_field and list(chains) == [(PARENT_HOP,)]:
            return self._parent_partitions(chains[(PARENT_HOP,)])
        per_chain: list[tuple[list[int], dict[str, list[tuple[Any, ...]]]]] = []
        for hops, positions in chains.items():
            paths = [self.aggregation.group_by[i].path for i in positions]
            per_chain.append((positions, self._far_values(hops, paths)))
        linked: set[str] = set().union(*(values.keys() for _, values in per_chain))
        combos: dict[tuple[Any, ...], list[str]] = {}
        for rt_id in linked:
            options = [
                values.get(rt_id) or [tuple(None for _ in positions)]
                for positions, values in per_chain
            ]
            for combo in itertools.product(*options):
                flat = tuple(v for part in combo for v in part)
                combos.setdefault(flat, []).append(rt_id)
        order = [i for positions, _ in per_chain for i in positions]
        partitions: list[tuple[dict[int, Any], Document]] = [
            (dict(zip(order, combo, strict=True)), {"_id": {"$in": sorted(ids)}})
            for combo, ids in combos.items()
        ]
        partitions.append((dict.fromkeys(order), {"_id": {"$nin": sorted(linked)}}))
        return partitions

    def _parent_partitions(self, positions: list[int]) -> list[tuple[dict[int, Any], Document]]:
        """The partitions by the parents' values, from the parent id on each entity: the live
        parents of the selected entities, one ``_wbParent $in`` per distinct value tuple, and
        the entities with no live parent (``$nin``: also those without the field)."""
        fields = [_field(self.aggregation.group_by[i].path) for i in positions]
        parent_ids = sorted(
            p for p in self.store._entities.distinct(_PARENT, self.selection) if p is not None
        )
        combos: dict[tuple[Any, ...], list[str]] = {}
        live: list[str] = []
        for doc in self.store._entities.find(
            {"_id": {"$in": parent_ids}, "archived": False}, dict.fromkeys(fields, 1)
        ):
            combos.setdefault(tuple(_value_at(doc, f) for f in fields), []).append(doc["_id"])
            live.append(doc["_id"])
        partitions: list[tuple[dict[int, Any], Document]] = [
            (dict(zip(positions, combo, strict=True)), {_PARENT: {"$in": sorted(ids)}})
            for combo, ids in combos.items()
        ]
        partitions.append((dict.fromkeys(positions), {_PARENT: {"$nin": sorted(live)}}))
        return partitions

    def _far_values(
        self, hops: tuple[Hop, ...], paths: Sequence[tuple[str, ...]]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """For every entity with a live far end through ``hops``: the values of ``paths`` on
        each far end (ids and values only; the far ends' documents are projected)."""
        reach: dict[str, set[str]] | None = None  # entity id -> current far ids
        for role_id, direction in hops:
            near_end, far_end = ("sourceRtId", "targetRtId")
            if direction == "inbound":
                near_end, far_end = far_end, near_end
            query: Document = {"roleId": role_id}
            if reach is not None:
                current = sorted(set().union(*reach.values())) if reach else []
                query[near_end] = {"$in": current}
            step: dict[str, set[str]] = {}
            for doc in self.store._associations.find(query, {near_end: 1, far_end: 1}):
                step.setdefault(doc[near_end], set()).add(doc[far_end])
            if reach is None:
                reach = step
            else:
                reach = {
                    start: set().union(*(step.get(m, set()) for m in middles))
                    for start, middles in reach.items()
                }
        ends = sorted(set().union(*reach.values())) if reach else []
        fields = [_field(path) for path in paths]
        projection = dict.fromkeys(fields, 1)
        values: dict[str, tuple[Any, ...]] = {}
        for doc in self.store._entities.find({"_id": {"$in": ends}, "archived": False}, projection):
            values[doc["_id"]] = tuple(_value_at(doc, f) for f in fields)
        out: dict[str, list[tuple[Any, ...]]] = {}
        for start, far_ids in (reach or {}).items():
            found = [values[f] for f in sorted(far_ids) if f in values]
            if found:
                out[start] = found
        return out

    def _group(self, match: Document, field: str | None = None) -> list[Document]:
        """Groups of ``match`` by the local keys with ``v``: the number of entities, or the sum
        of ``field``. One accumulator per pipeline: FerretDB v1 fills only the first one."""
        group: Document = {
            "_id": {f"g{i}": "$" + self._key_field(i) for i in self.local},
            "v": {"$sum": 1 if field is None else "$" + field},
        }
        return list(self.store._entities.aggregate([{"$match": match}, {"$group": group}]))

    def _key_field(self, i: int) -> str:
        return _field(self.aggregation.group_by[i].path)

    def _local_keys(self, doc: Document) -> dict[int, Any]:
        return {i: doc["_id"].get(f"g{i}") for i in self.local}

    def run(self) -> AggregationResult:
        aggregation = self.aggregation
        width = len(aggregation.group_by)
        measures = aggregation.measures
        fields = [_field(m.target.path) for m in measures]
        index = {f: j for j, f in enumerate(dict.fromkeys(fields))}
        summed = sorted(
            {
                index[f]
                for f, m in zip(fields, measures, strict=True)
                if m.function in ("sum", "avg")
            }
        )
        counted = sorted(
            {
                index[f]
                for f, m in zip(fields, measures, strict=True)
                if m.function in ("count", "sum", "avg")
            }
        )
        names = list(index)
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        bases: dict[tuple[Any, ...], list[Document]] = {}
        for remote_values, constraint in self._partitions():
            base = _and([c for c in (self.selection, constraint) if c])

            def key(doc: Document, remote: dict[int, Any] = remote_values) -> tuple[Any, ...]:
                keys = {**remote, **self._local_keys(doc)}
                return tuple(keys[i] for i in range(width))

            for doc in self._group(base):
                entry = merged.setdefault(key(doc), {"n": 0})
                entry["n"] += doc["v"]
                bases.setdefault(key(doc), []).append(base)
            for j in summed:
                for doc in self._group(base, names[j]):
                    entry = merged.setdefault(key(doc), {"n": 0})
                    entry[f"s{j}"] = entry.get(f"s{j}", 0) + doc["v"]
            for j in counted:
                present = {names[j]: {"$ne": None}}
                numeric = {names[j]: {"$type": "number"}}
                for label, condition in (("c", present), ("k", numeric)):
                    for doc in self._group(_and([base, condition])):
                        entry = merged.setdefault(key(doc), {"n": 0})
                        entry[f"{label}{j}"] = entry.get(f"{label}{j}", 0) + doc["v"]
        rows = [AggregateRow(keys, entry["n"], ()) for keys, entry in merged.items()]
        if not width and not rows:
            return AggregationResult(rows=[_empty_row(aggregation)])
        result = _page(rows, aggregation, bool(width))
        for row in result.rows:
            entry = merged[row.keys]
            values: list[Any] = []
            for measure, field in zip(measures, fields, strict=True):
                j = index[field]
                numbers = entry.get(f"k{j}", 0)
                if measure.function == "count":
                    values.append(entry.get(f"c{j}", 0))
                elif measure.function == "sum":
                    values.append(entry.get(f"s{j}") if numbers else None)
                elif measure.function == "avg":
                    values.append(entry[f"s{j}"] / numbers if numbers else None)
                else:
                    found = [
                        v
                        for base in bases[row.keys]
                        if (v := self._extreme(base, row.keys, field, measure)) is not None
                    ]
                    pick = min if measure.function == "min" else max
                    values.append(pick(found, key=_order) if found else None)
            row.values = tuple(values)
        return _finish(result, bool(width))

    def _extreme(self, base: Document, keys: tuple[Any, ...], field: str, measure: Measure) -> Any:
        """min/max of ``field`` in one group: the first value in index order."""
        clauses = [base, {field: {"$ne": None}}]
        clauses += [{self._key_field(i): keys[i]} for i in self.local]
        direction = 1 if measure.function == "min" else -1
        for doc in (
            self.store._entities.find(_and(clauses), {field: 1}).sort(field, direction).limit(1)
        ):
            return _value_at(doc, field)
        return None
