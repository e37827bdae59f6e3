"""Model indexes of the MongoDB entity store: the unique rules the adapter checks itself, the
server indexes behind index specs and the specs remembered in the ``indexes`` collection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

from workbench.errors import (
    Conflict,
)
from workbench.storage.base import (
    IndexSpec,
)
from workbench.storage.mongo_codec import (
    _ASSOCIATIONS,
    _ENTITIES,
    _INDEXES,
    _META,
    _PARENT,
    Document,
    _decode,
    _meta_id,
)
from workbench.storage.mongo_query import (
    _field,
    _value_at,
)
from workbench.storage.parents import PARENT_ROLE

#: prefix of the server indexes made from IndexSpecs
_INDEX_PREFIX = "wb_"

_log = logging.getLogger("workbench.storage")

#: the meta document saying every entity holds its parent id (written once the back-fill is done)
_PARENT_MARKER = _meta_id("_wb.storage", "parent-field")
#: entities back-filled per bulk write (and a progress line each time)
_BACKFILL_CHUNK = 10_000


class _UniqueRule:
    """One uniqueness rule checked before writing: an IndexSpec or the well-known-name rule."""

    def __init__(
        self,
        name: str,
        fields: Sequence[str],
        type_ids: Sequence[str] | None,
        not_archived_only: bool,
    ) -> None:
        self.name = name
        self.fields = list(fields)
        self.type_ids = None if type_ids is None else list(type_ids)
        self.not_archived_only = not_archived_only

    def key(self, document: Document) -> tuple[Any, ...] | None:
        """The unique values of ``document`` or None when the rule does not cover it."""
        if self.type_ids is not None and document["ckTypeId"] not in self.type_ids:
            return None
        if self.not_archived_only and document.get("archived"):
            return None
        values = tuple(_value_at(document, field) for field in self.fields)
        if any(value is None for value in values):
            return None
        return values

    def scope(self) -> list[Document]:
        clauses: list[Document] = []
        if self.type_ids is not None:
            clauses.append({"ckTypeId": {"$in": self.type_ids}})
        if self.not_archived_only:
            clauses.append({"archived": False})
        return clauses

    def describe(self, values: tuple[Any, ...]) -> str:
        shown = ", ".join(
            f"{field.removeprefix('attributes.')}={_decode(value)!r}"
            for field, value in zip(self.fields, values, strict=True)
        )
        return f"{self.name} ({shown})"


_WELL_KNOWN_NAME_RULE = _UniqueRule("rtWellKnownName", ["rtWellKnownName"], None, True)


def _unique_rules(db: Database[Document], session: ClientSession | None) -> list[_UniqueRule]:
    rules = [_WELL_KNOWN_NAME_RULE]
    for doc in db[_INDEXES].find(
        {"kind": {"$in": ["unique", "unique_not_deleted"]}}, session=session
    ):
        rules.append(
            _UniqueRule(
                doc["_id"],
                [_field(tuple(path.split("."))) for path in doc["paths"]],
                doc["typeIds"],
                doc["kind"] == "unique_not_deleted",
            )
        )
    return rules


def _drop_server_index(entities: Collection[Document], existing: set[str], name: str) -> None:
    server_name = _INDEX_PREFIX + name
    if server_name in existing:
        entities.drop_index(server_name)
        existing.discard(server_name)


def _check_existing_unique(entities: Collection[Document], spec: IndexSpec) -> None:
    """Raise Conflict when stored entities already violate the unique ``spec``."""
    fields = [_field(path) for path in spec.paths]
    match: Document = {"ckTypeId": {"$in": list(spec.type_ids)}}
    match.update({field: {"$ne": None} for field in fields})
    if spec.kind == "unique_not_deleted":
        match["archived"] = False
    group_key = {f"k{i}": f"${field}" for i, field in enumerate(fields)}
    duplicates = list(
        entities.aggregate(
            [
                {"$match": match},
                {"$group": {"_id": group_key, "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
                {"$limit": 1},
            ]
        )
    )
    if duplicates:
        values = tuple(duplicates[0]["_id"][f"k{i}"] for i in range(len(fields)))
        rule = _UniqueRule(spec.name, fields, spec.type_ids, spec.kind == "unique_not_deleted")
        raise Conflict(
            f"cannot create unique index {rule.describe(values)}: "
            f"{duplicates[0]['n']} entities already share these values; change or archive "
            "all but one of them first"
        )


def _index_document(spec: IndexSpec) -> Document:
    return {
        "_id": spec.name,
        "kind": spec.kind,
        "typeIds": list(spec.type_ids),
        # dotted, not nested lists: FerretDB v1 stores no arrays of arrays
        "paths": [".".join(path) for path in spec.paths],
    }


def _ensure_parent_field(db: Database[Document], url: str) -> None:
    """Give the entities of a database written before the parent field existed their parent ids
    (:mod:`workbench.storage.parents`), then index the field and mark the database done.

    Without transactions the back-fill cannot be one atomic write, so its result counts only once
    complete: aggregations read the field when the marker exists, and until then resolve parents
    from the links (:func:`parent_field_ready`). An interrupted back-fill is started again by the
    next open; what it wrote is the same value the write path keeps, so nothing stale is left."""
    entities = db[_ENTITIES]
    entities.create_index([(_PARENT, ASCENDING)], name="parent")
    if parent_field_ready(db):
        return
    total = db[_ASSOCIATIONS].count_documents({"roleId": PARENT_ROLE})
    if total:
        _log.info("entity store %s: keeping parent ids from %d links", url, total)
    links = db[_ASSOCIATIONS].find({"roleId": PARENT_ROLE}, {"sourceRtId": 1, "targetRtId": 1})
    parents: dict[str, list[str]] = {}
    done = 0
    for link in links.sort([("sourceRtId", ASCENDING)]):
        source = link["sourceRtId"]
        if source not in parents and len(parents) >= _BACKFILL_CHUNK:
            done += _write_parents(entities, parents)
            _log.info("entity store %s: parent ids from %d of %d links", url, done, total)
            parents = {}
        parents.setdefault(source, []).append(link["targetRtId"])
    if parents:
        done += _write_parents(entities, parents)
        _log.info("entity store %s: parent ids from %d of %d links", url, done, total)
    db[_META].replace_one(
        {"_id": _PARENT_MARKER},
        {
            "_id": _PARENT_MARKER,
            "namespace": "_wb.storage",
            "key": "parent-field",
            "document": '{"done": true}',
        },
        upsert=True,
    )


def _write_parents(entities: Collection[Document], parents: dict[str, list[str]]) -> int:
    """Set the parent field of these children; the number of links written."""
    entities.bulk_write(
        [
            UpdateOne(
                {"_id": source},
                {"$set": {_PARENT: targets[0] if len(targets) == 1 else sorted(targets)}},
            )
            for source, targets in parents.items()
        ],
        ordered=False,
    )
    return sum(len(targets) for targets in parents.values())


def parent_field_ready(db: Database[Document]) -> bool:
    """True once every entity of ``db`` holds its parent id (see :func:`_ensure_parent_field`)."""
    return db[_META].find_one({"_id": _PARENT_MARKER}, {"_id": 1}) is not None
