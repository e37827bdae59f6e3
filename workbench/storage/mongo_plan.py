"""The write plan of the MongoDB entity store on servers without multi-document transactions:
a batch validated as a whole (:class:`_Plan`), and the before-images that undo a batch that
failed mid-way (:class:`_UndoLog`). See "Write guarantees" in :mod:`workbench.storage.mongo`.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import ReplaceOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    PyMongoError,
)

from workbench.errors import (
    Conflict,
    NotFound,
    ValidationError,
    WorkbenchError,
)
from workbench.storage.base import (
    WriteBatch,
)
from workbench.storage.mongo_codec import (
    _ASSOCIATIONS,
    _BATCH,
    _ENTITIES,
    _META,
    _PARENT,
    Document,
    _association_document,
    _association_id,
    _canonical,
    _encode,
    _entity_document,
    _meta_id,
)
from workbench.storage.mongo_indexes import (
    _unique_rules,
)
from workbench.storage.mongo_query import (
    _and,
    _value_at,
)
from workbench.storage.parents import PARENT_ROLE

#: alternatives per $or query when looking for stored values a batch would duplicate
_OR_CHUNK = 500


class _Plan:
    """A validated batch: the documents to write and the before-images to undo them."""

    def __init__(self) -> None:
        self.originals: dict[str, Document | None] = {}
        self.insert_documents: list[Document] = []
        self.update_operations: list[tuple[str, int, Document]] = []
        self.erase_ids: list[str] = []
        self.erased_links: list[Document] = []
        self.removed_links: list[Document] = []
        self.added_links: list[Document] = []
        self.meta_puts: list[Document] = []
        self.meta_deletes: list[str] = []
        self.meta_originals: dict[str, Document | None] = {}
        #: entities outside the batch whose parent id changes: (rt id, new value or None)
        self.parent_updates: list[tuple[str, Any]] = []
        self.parent_originals: dict[str, Document | None] = {}

    @classmethod
    def make(
        cls,
        db: Database[Document],
        batch: WriteBatch,
        token: str,
        session: ClientSession | None,
    ) -> _Plan:
        plan = cls()
        entities = db[_ENTITIES]
        touched = list(
            dict.fromkeys(
                [e.rt_id for e in batch.inserts]
                + [e.rt_id for e, _ in batch.updates]
                + list(batch.erase)
            )
        )
        for doc in entities.find({"_id": {"$in": touched}}, session=session):
            plan.originals[doc["_id"]] = doc
        # state: what each touched id holds after the batch so far (None: absent)
        state: dict[str, Document | None] = {rt_id: plan.originals.get(rt_id) for rt_id in touched}
        # the version each replace must find in the database (optimistic concurrency)
        db_version: dict[str, int] = {
            rt_id: doc["rtVersion"] for rt_id, doc in plan.originals.items() if doc is not None
        }
        for entity in batch.inserts:
            if state.get(entity.rt_id) is not None:
                raise Conflict(
                    f"entity {entity.rt_id} ({entity.ck_type_id}) already exists; "
                    "update it instead of inserting it"
                )
            document = _entity_document(entity, token)
            plan.insert_documents.append(document)
            state[entity.rt_id] = document
            db_version[entity.rt_id] = entity.rt_version
        for entity, expected in batch.updates:
            current = state.get(entity.rt_id)
            if current is None:
                raise NotFound(
                    f"entity {entity.rt_id} ({entity.ck_type_id}) does not exist; "
                    "insert it instead of updating it"
                )
            if expected is not None and current["rtVersion"] != expected:
                raise Conflict(
                    f"entity {entity.rt_id} has rtVersion {current['rtVersion']}, not {expected}: "
                    "it was changed since it was read; re-read it and apply the change again"
                )
            document = _entity_document(entity, token)
            plan.update_operations.append((entity.rt_id, db_version[entity.rt_id], document))
            state[entity.rt_id] = document
            db_version[entity.rt_id] = entity.rt_version
        erase = list(dict.fromkeys(batch.erase))
        for rt_id in erase:
            state[rt_id] = None
        plan.erase_ids = erase
        associations = db[_ASSOCIATIONS]
        if erase:
            plan.erased_links = list(
                associations.find(
                    {"$or": [{"sourceRtId": {"$in": erase}}, {"targetRtId": {"$in": erase}}]},
                    session=session,
                )
            )
        erased_link_ids = {doc["_id"] for doc in plan.erased_links}
        removed_ids = [
            _association_id(link)
            for link in batch.remove_associations
            if _association_id(link) not in erased_link_ids
        ]
        if removed_ids:
            plan.removed_links = list(
                associations.find(
                    {"_id": {"$in": list(dict.fromkeys(removed_ids))}}, session=session
                )
            )
        added: dict[str, Document] = {}
        for link in batch.add_associations:
            added.setdefault(_association_id(link), _association_document(link, token))
        plan.added_links = list(added.values())
        plan._plan_parents(db, erase, session)
        plan._plan_meta(db, batch, token, session)
        plan._check_unique(db, state, session)
        return plan

    def _plan_parents(
        self, db: Database[Document], erase: list[str], session: ClientSession | None
    ) -> None:
        """The parent id of every entity whose ``ParentChild`` links the batch changes, from its
        links after the batch: on the documents written anyway (a replace drops the field),
        else as a ``$set``/``$unset`` of the field alone."""
        written = {doc["_id"]: doc for doc in self.insert_documents}
        written.update({rt_id: doc for rt_id, _, doc in self.update_operations})
        changed = [
            *self.erased_links,
            *self.removed_links,
            *self.added_links,
        ]
        sources = {doc["sourceRtId"] for doc in changed if doc["roleId"] == PARENT_ROLE} | set(
            written
        )
        sources -= set(erase)
        if not sources:
            return
        links = {
            doc["_id"]: doc
            for doc in db[_ASSOCIATIONS].find(
                {"roleId": PARENT_ROLE, "sourceRtId": {"$in": sorted(sources)}},
                {"sourceRtId": 1, "targetRtId": 1},
                session=session,
            )
        }
        for doc in (*self.erased_links, *self.removed_links):
            links.pop(doc["_id"], None)
        for doc in self.added_links:
            if doc["roleId"] == PARENT_ROLE and doc["sourceRtId"] in sources:
                links[doc["_id"]] = doc
        targets: dict[str, list[str]] = {}
        for doc in links.values():
            targets.setdefault(doc["sourceRtId"], []).append(doc["targetRtId"])
        others: dict[str, Any] = {}
        for rt_id in sorted(sources):
            found = sorted(targets.get(rt_id, []))
            value = None if not found else found[0] if len(found) == 1 else found
            if rt_id in written:
                if value is not None:
                    written[rt_id][_PARENT] = value
            else:
                others[rt_id] = value
        if not others:
            return
        for doc in db[_ENTITIES].find({"_id": {"$in": list(others)}}, session=session):
            if doc.get(_PARENT) != others[doc["_id"]]:
                self.parent_originals[doc["_id"]] = doc
                self.parent_updates.append((doc["_id"], others[doc["_id"]]))

    def _plan_meta(
        self,
        db: Database[Document],
        batch: WriteBatch,
        token: str,
        session: ClientSession | None,
    ) -> None:
        final: dict[str, Document | None] = {}
        for write in batch.meta:
            meta_id = _meta_id(write.namespace, write.key)
            if write.document is None:
                final[meta_id] = None
                continue
            try:
                text = json.dumps(_encode(write.document), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"meta document {write.namespace}/{write.key} is not JSON-serialisable: {exc}"
                ) from None
            final[meta_id] = {
                "_id": meta_id,
                "namespace": write.namespace,
                "key": write.key,
                "document": text,
                _BATCH: token,
            }
        self.meta_puts = [doc for doc in final.values() if doc is not None]
        self.meta_deletes = [meta_id for meta_id, doc in final.items() if doc is None]
        self.meta_originals = dict.fromkeys(final)
        if final:
            for doc in db[_META].find({"_id": {"$in": list(final)}}, session=session):
                self.meta_originals[doc["_id"]] = doc

    def _check_unique(
        self,
        db: Database[Document],
        state: dict[str, Document | None],
        session: ClientSession | None,
    ) -> None:
        """Every unique rule holds for the state after the batch (batch docs + untouched ones)."""
        written = [doc for doc in state.values() if doc is not None]
        if not written:
            return
        excluded = list(state)
        entities = db[_ENTITIES]
        for rule in _unique_rules(db, session):
            keys: dict[str, tuple[str, tuple[Any, ...]]] = {}
            for doc in written:
                values = rule.key(doc)
                if values is None:
                    continue
                canonical = _canonical(list(values))
                if canonical in keys:
                    raise Conflict(
                        f"entities {keys[canonical][0]} and {doc['_id']} of the batch share the "
                        f"unique {rule.describe(values)}; give each its own value"
                    )
                keys[canonical] = (doc["_id"], values)
            candidates = list(keys.values())
            for start in range(0, len(candidates), _OR_CHUNK):
                chunk = candidates[start : start + _OR_CHUNK]
                alternatives = [
                    _and([{field: value} for field, value in zip(rule.fields, values, strict=True)])
                    for _, values in chunk
                ]
                query = _and(
                    [
                        *rule.scope(),
                        {"_id": {"$nin": excluded}},
                        alternatives[0] if len(alternatives) == 1 else {"$or": alternatives},
                    ]
                )
                for existing in entities.find(query, session=session):
                    existing_values = tuple(_value_at(existing, f) for f in rule.fields)
                    for rt_id, values in chunk:
                        if _canonical(list(values)) == _canonical(list(existing_values)):
                            raise Conflict(
                                f"entity {rt_id} would share the unique "
                                f"{rule.describe(values)} with entity {existing['_id']}; "
                                "choose another value or change that entity first"
                            )


class _UndoLog:
    """Before-images of what a non-transactional batch is about to write, to roll it back."""

    def __init__(self, db: Database[Document], token: str) -> None:
        self._db = db
        self._token = token
        self._originals: dict[str, dict[str, Document | None]] = {}

    def record(self, collection: str, originals: dict[str, Document | None]) -> None:
        """Remember the state before a write of these documents (the first record per id wins)."""
        seen = self._originals.setdefault(collection, {})
        for key, document in originals.items():
            seen.setdefault(key, document)

    def run(self, failure: BaseException, url: str) -> None:
        """Put back every recorded document; raise if that fails (the batch is half-written)."""
        try:
            for collection, originals in self._originals.items():
                self._restore(self._db[collection], originals)
        except PyMongoError as exc:
            raise WorkbenchError(
                f"a write batch failed in MongoDB at {url} ({failure}) and undoing its partial "
                f"writes failed too ({exc}); documents tagged {_BATCH}={self._token!r} may be "
                "left from it: check them before retrying"
            ) from failure

    def _restore(self, collection: Collection[Document], originals: dict[str, Any]) -> None:
        # only documents this batch wrote carry its token, so writes that never happened (or
        # that another writer made since) are left alone
        created = [key for key, doc in originals.items() if doc is None]
        if created:
            collection.delete_many({"_id": {"$in": created}, _BATCH: self._token})
        existed = {key: doc for key, doc in originals.items() if doc is not None}
        if not existed:
            return
        collection.bulk_write(
            [ReplaceOne({"_id": key, _BATCH: self._token}, doc) for key, doc in existed.items()],
            ordered=False,
        )
        present = {
            doc["_id"] for doc in collection.find({"_id": {"$in": list(existed)}}, {"_id": 1})
        }
        missing = [doc for key, doc in existed.items() if key not in present]
        if missing:
            try:
                collection.insert_many(missing, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
