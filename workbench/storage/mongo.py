"""The MongoDB entity store: one database per tenant, spoken to through ``pymongo``.

Works against MongoDB and against FerretDB v1 (MongoDB wire protocol on SQLite/PostgreSQL). The
URL is ``mongodb://[user:pass@]host:port/<database>[?options]``; the database is the tenant's and
holds four collections:

- ``entities``: ``{_id: rtId, ckTypeId, rtWellKnownName, rtVersion, rtCreationDateTime,
  rtChangedDateTime, archived, attributes: {...}, _wbParent}`` (``_wbParent``: the parent's id,
  indexed, kept by :meth:`MongoEntityStore.apply`; see :mod:`workbench.storage.parents`)
- ``associations``: ``{_id, roleId, sourceRtId, sourceCkTypeId, targetRtId, targetCkTypeId}``
- ``meta``: ``{_id, namespace, key, document}`` with ``document`` as JSON text (meta documents
  may use keys with ``.`` or ``$`` that the wire protocol servers refuse as field names)
- ``indexes``: the :class:`~workbench.storage.base.IndexSpec` list last given to
  :meth:`MongoEntityStore.ensure_indexes`

Datetimes: BSON dates have millisecond precision, so datetimes (attribute values and the system
timestamps) are stored as fixed-width UTC ISO strings behind a marker
(``"$dt:2026-01-02T03:04:05.123456Z"``, see :func:`encode_datetime`), the same logical encoding as
the SQLite adapter: they sort and compare chronologically as plain strings and decode back to
aware datetimes with every microsecond. A string value that itself starts with ``$dt:`` or ``$$``
is stored with one more leading ``$``. LIKE, MATCH_REG_EX and text search never match a datetime;
MATCH_REG_EX sees such an escaped string with its extra ``$``.

Write guarantees (:meth:`MongoEntityStore.apply`):

- On a server that runs multi-document transactions (a MongoDB replica set or sharded cluster,
  detected with ``hello``) the whole batch runs in one transaction: all or nothing, also under
  crashes and concurrent writers. :meth:`~MongoEntityStore.supports_transactions` is True.
- Elsewhere (a standalone ``mongod``, FerretDB v1) the batch is first validated as a whole against
  the current state plus the batch (existing ids, ``rtVersion``, unique indexes and
  ``rtWellKnownName``), then written; every document is tagged with the batch's token and its
  before-image is kept, and if a write fails mid-way (a concurrent writer, a lost connection) what
  was written is undone, so a failure leaves nothing half-written. This is best effort: a crash of
  this process between the writes, or a connection that stays down during the undo, can leave part
  of a batch behind (the error then says so), and concurrent readers may see a batch half-applied
  for a moment. :meth:`~MongoEntityStore.supports_transactions` is False.

Uniqueness (``unique``/``unique_not_deleted`` index specs, ``rtWellKnownName`` among non-archived
entities) is always checked by this adapter before writing, with messages naming the value. Where
the server supports partial indexes (MongoDB) real unique indexes restricted to the covered types
(``partialFilterExpression``) back that check up against concurrent writers; FerretDB v1 has no
partial indexes, so there the adapter's check is the only enforcement and two concurrent writers
can both pass it. A missing or null value never collides (as in SQL).

Association filters (:class:`~workbench.query.model.AssociationCondition`) are resolved in steps,
each one query: the ids of the other-end entities that match the nested filters and are not
archived, then the associations of the role that reach them, then the outer filter becomes
``_id $in [...]``. Nested association filters recurse the same way. The id lists travel in the
query document, so one step is limited by the 16 MB BSON document size (some 500,000 ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure
from pymongo.uri_parser import parse_uri

from workbench.errors import Conflict, ValidationError
from workbench.query.aggregation import AggregationResult, EntityAggregation
from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.query.model import (
    ANY_ELEMENT,
    AssociationCondition,
    Condition,
    EntityQuery,
    Filter,
    Operator,
    Page,
    TextSearch,
)
from workbench.storage.base import (
    EntityStore,
    IndexSpec,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)
from workbench.storage.mongo_aggregate import aggregate_mongo
from workbench.storage.mongo_codec import (
    _ASSOCIATIONS,
    _BATCH,
    _ENTITIES,
    _INDEXES,
    _META,
    _PARENT,
    Document,
    _association_from_document,
    _decode,
    _entity_from_document,
    _meta_decode,
    _meta_id,
    decode_datetime,
    encode_datetime,
)
from workbench.storage.mongo_errors import _scrub_url, _translate_errors
from workbench.storage.mongo_indexes import (
    _INDEX_PREFIX,
    _check_existing_unique,
    _drop_server_index,
    _ensure_parent_field,
    _index_document,
    parent_field_ready,
)
from workbench.storage.mongo_plan import _Plan, _UndoLog
from workbench.storage.mongo_query import (
    _and,
    _compile_condition,
    _compile_text_search,
    _field,
    _keyset_predicate,
    _value_at,
)

__all__ = ["MongoEntityStore", "decode_datetime", "encode_datetime"]

#: server error codes meaning "this index form is not supported here" (FerretDB NotImplemented,
#: MongoDB CannotCreateIndex / BadValue for partial filter expressions it lacks)
_UNSUPPORTED_INDEX_CODES = frozenset({238, 67, 2, 9})
_DEFAULT_TIMEOUT_MS = 5000


class MongoEntityStore(EntityStore):
    """Entity store in one MongoDB (or FerretDB) database; see the module docstring."""

    def __init__(self, client: MongoClient[Document], database: str, url: str) -> None:
        self._client = client
        self._db: Database[Document] = client[database]
        self.url = url
        self._transactions: bool | None = None
        self._partial_indexes: bool | None = None
        self._parents_ready = False

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, **options: Any) -> MongoEntityStore:
        """Connect to ``mongodb://[user:pass@]host:port/<database>[?options]``.

        ``options`` go to :class:`pymongo.MongoClient`; ``serverSelectionTimeoutMS`` and
        ``connectTimeoutMS`` default to 5 s so an unreachable server fails fast. Raises
        ValidationError for a malformed URL or one without a database name, BackendUnavailable
        when the server cannot be reached.
        """
        shown = _scrub_url(url)
        try:
            parsed = parse_uri(url)
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise ValidationError(
                f"entity store URL {shown!r} is not a valid MongoDB URL ({exc}); "
                "use mongodb://[user:pass@]host:port/<database>"
            ) from None
        database = parsed.get("database")
        if not database:
            raise ValidationError(
                f"entity store URL {shown!r} names no database; the database holds one tenant's "
                "entities, so add its name: mongodb://host:port/<database>"
            )
        options.setdefault("serverSelectionTimeoutMS", _DEFAULT_TIMEOUT_MS)
        options.setdefault("connectTimeoutMS", _DEFAULT_TIMEOUT_MS)
        options.setdefault("tz_aware", True)
        try:
            client: MongoClient[Document] = MongoClient(url, **options)
        except (ConfigurationError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"cannot use entity store URL {shown!r} with options {options!r}: {exc}"
            ) from None
        store = cls(client, database, shown)
        try:
            store._probe()
            store._ensure_base_indexes()
            with store._errors("keeping parent ids on the entities"):
                _ensure_parent_field(store._db, shown)
        except BaseException:
            client.close()
            raise
        return store

    def close(self) -> None:
        self._client.close()

    def drop(self) -> None:
        with self._errors("dropping the database"):
            self._client.drop_database(self._db.name)
        self.close()

    def supports_transactions(self) -> bool:
        if self._transactions is None:
            self._probe()
        return bool(self._transactions)

    def _probe(self) -> None:
        with self._errors("connecting"):
            hello = self._client.admin.command("hello")
            build = self._client.admin.command("buildInfo")
        replicated = "setName" in hello or hello.get("msg") == "isdbgrid"
        # FerretDB v1 can be told to report a replica set name (--repl-set-name) but runs no
        # transactions whatever it reports
        ferretdb = "ferretdbVersion" in build
        self._transactions = replicated and "logicalSessionTimeoutMinutes" in hello and not ferretdb
        self._element_match = not ferretdb
        self._pipeline = not ferretdb

    def _ensure_base_indexes(self) -> None:
        with self._errors("creating the base indexes"):
            entities = self._db[_ENTITIES]
            entities.create_index([("ckTypeId", ASCENDING)], name="ckTypeId")
            associations = self._db[_ASSOCIATIONS]
            associations.create_index(
                [("sourceRtId", ASCENDING), ("roleId", ASCENDING)], name="source"
            )
            associations.create_index(
                [("targetRtId", ASCENDING), ("roleId", ASCENDING)], name="target"
            )
            self._db[_META].create_index([("namespace", ASCENDING)], name="namespace")
            wkn_unique = self._create_partial_unique_index(
                entities,
                [("rtWellKnownName", ASCENDING)],
                "rtWellKnownName_unique",
                {"archived": False, "rtWellKnownName": {"$type": "string"}},
            )
            if not wkn_unique:
                entities.create_index([("rtWellKnownName", ASCENDING)], name="rtWellKnownName")

    def _create_partial_unique_index(
        self,
        collection: Collection[Document],
        keys: list[tuple[str, int]],
        name: str,
        partial: Document,
    ) -> bool:
        """Create a partial unique index when the server supports them; False when it does not."""
        if self._partial_indexes is False:
            return False
        try:
            collection.create_index(keys, name=name, unique=True, partialFilterExpression=partial)
        except OperationFailure as exc:
            if exc.code in _UNSUPPORTED_INDEX_CODES:
                self._partial_indexes = False
                return False
            raise
        self._partial_indexes = True
        return True

    # -- errors ----------------------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Translate pymongo exceptions raised while doing ``action`` into workbench errors."""
        return _translate_errors(self.url, self._client, action)

    # -- reads -----------------------------------------------------------------------------------

    @property
    def _entities(self) -> Collection[Document]:
        return self._db[_ENTITIES]

    @property
    def _associations(self) -> Collection[Document]:
        return self._db[_ASSOCIATIONS]

    def get_many(
        self, rt_ids: Sequence[str], include_archived: bool = True
    ) -> dict[str, StoredEntity]:
        if not rt_ids:
            return {}
        query: Document = {"_id": {"$in": list(dict.fromkeys(rt_ids))}}
        if not include_archived:
            query["archived"] = False
        with self._errors("reading entities"):
            documents = list(self._entities.find(query))
        return {doc["_id"]: _entity_from_document(doc) for doc in documents}

    def entity_types(self, rt_ids: Sequence[str], include_archived: bool = True) -> dict[str, str]:
        if not rt_ids:
            return {}
        query: Document = {"_id": {"$in": list(dict.fromkeys(rt_ids))}}
        if not include_archived:
            query["archived"] = False
        with self._errors("reading entity types"):
            documents = list(self._entities.find(query, {"ckTypeId": 1}))
        return {doc["_id"]: doc["ckTypeId"] for doc in documents}

    def get_by_well_known_name(self, name: str) -> StoredEntity | None:
        with self._errors(f"reading the entity with rtWellKnownName {name!r}"):
            document = self._entities.find_one({"rtWellKnownName": name, "archived": False})
        return None if document is None else _entity_from_document(document)

    def find(self, query: EntityQuery) -> Page[StoredEntity]:
        if query.first is not None and query.first < 0:
            raise ValidationError(f"'first' must be 0 or more, got {query.first}")
        sort = query.effective_sort()
        fields = [_field(key.path) for key in sort]
        with self._errors("finding entities"):
            selection = self._selection(query)
            clauses = [selection] if selection else []
            if query.after is not None:
                clauses.append(
                    _keyset_predicate(sort, decode_cursor(query.after, len(sort), sort=sort))
                )
            cursor = self._entities.find(_and(clauses)).sort(
                [
                    (field, DESCENDING if key.descending else ASCENDING)
                    for field, key in zip(fields, sort, strict=True)
                ]
            )
            if query.first is not None:
                cursor = cursor.limit(query.first + 1)
            documents = list(cursor)
            total = self._entities.count_documents(selection) if query.include_total else None
        has_next = query.first is not None and len(documents) > query.first
        if query.first is not None:
            documents = documents[: query.first]
        cursors = [
            encode_cursor([_decode(_value_at(doc, field)) for field in fields], sort=sort)
            for doc in documents
        ]
        return Page(
            items=[_entity_from_document(doc) for doc in documents],
            has_next_page=has_next,
            end_cursor=cursors[-1] if cursors else None,
            cursors=cursors,
            total_count=total,
        )

    def count(self, query: EntityQuery) -> int:
        with self._errors("counting entities"):
            return self._entities.count_documents(self._selection(query))

    def aggregate(self, aggregation: EntityAggregation) -> AggregationResult:
        return aggregate_mongo(self, aggregation)

    def supports_aggregation_pipeline(self) -> bool:
        """True when one pipeline (``$lookup``, ``$avg``/``$min``/``$max``) does an aggregation;
        False on FerretDB v1, where it runs in steps (see :mod:`.mongo_aggregate`)."""
        if self._transactions is None:
            self._probe()
        return self._pipeline

    def supports_association_measures(self) -> bool:
        return self.supports_aggregation_pipeline()

    def _parent_field_ready(self) -> bool:
        """True once every entity holds its parent id (``_wbParent``, storage/parents.py)."""
        if not self._parents_ready:
            with self._errors("reading the storage layout"):
                self._parents_ready = parent_field_ready(self._db)
        return self._parents_ready

    def associations(
        self,
        rt_ids: Sequence[str],
        direction: Literal["outbound", "inbound"],
        role_id: str | None = None,
    ) -> list[StoredAssociation]:
        if not rt_ids:
            return []
        end = "sourceRtId" if direction == "outbound" else "targetRtId"
        query: Document = {end: {"$in": list(dict.fromkeys(rt_ids))}}
        if role_id is not None:
            query["roleId"] = role_id
        with self._errors("reading associations"):
            documents = list(self._associations.find(query))
        links = [_association_from_document(doc) for doc in documents]
        links.sort(key=lambda link: (link.role_id, link.source_rt_id, link.target_rt_id))
        return links

    def get_meta(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._errors(f"reading meta document {namespace}/{key}"):
            document = self._db[_META].find_one({"_id": _meta_id(namespace, key)})
        return None if document is None else _meta_decode(document)

    def list_meta(self, namespace: str) -> dict[str, dict[str, Any]]:
        with self._errors(f"listing meta namespace {namespace}"):
            documents = list(self._db[_META].find({"namespace": namespace}).sort("key"))
        return {doc["key"]: _meta_decode(doc) for doc in documents}

    # -- query compilation -----------------------------------------------------------------------

    def _selection(self, query: EntityQuery) -> Document:
        """The filter of ``query`` without paging (type, ids, archived, filters)."""
        clauses: list[Document] = []
        if query.type_ids is not None:
            clauses.append({"ckTypeId": {"$in": list(query.type_ids)}})
        if query.rt_ids is not None:
            clauses.append({"_id": {"$in": list(query.rt_ids)}})
        if not query.include_archived:
            clauses.append({"archived": False})
        clauses.extend(self._compile_filter(item) for item in query.filters)
        return _and(clauses)

    def supports_element_match(self) -> bool:
        if self._transactions is None:
            self._probe()
        return self._element_match

    def _compile_filter(self, item: Filter) -> Document:
        if isinstance(item, Condition):
            if (
                item.operator is Operator.BETWEEN
                and ANY_ELEMENT in item.path
                and not self.supports_element_match()
            ):
                raise ValidationError(
                    f"BETWEEN on {'.'.join(p for p in item.path if p != ANY_ELEMENT)!r} goes "
                    "through an array, and this server (FerretDB v1) cannot match both bounds "
                    "on the same element ($elemMatch on sub-documents); use two filters "
                    "(GREATER_EQUAL_THAN and LESS_EQUAL_THAN, which may match different elements)"
                )
            return _compile_condition(item)
        if isinstance(item, TextSearch):
            return _compile_text_search(item)
        if isinstance(item, AssociationCondition):
            return {"_id": {"$in": self._association_matches(item)}}
        raise ValidationError(f"unknown filter {item!r}")

    def _association_matches(self, condition: AssociationCondition) -> list[str]:
        """Ids of entities with a ``condition.role_id`` link whose other end matches (steps in the
        module docstring)."""
        near, far = (
            ("sourceRtId", "targetRtId")
            if condition.direction == "outbound"
            else ("targetRtId", "sourceRtId")
        )
        if condition.filters:
            other_filter = _and(
                [{"archived": False}, *(self._compile_filter(f) for f in condition.filters)]
            )
            other_ids = [doc["_id"] for doc in self._entities.find(other_filter, {"_id": 1})]
            if not other_ids:
                return []
            links = self._associations.find(
                {"roleId": condition.role_id, far: {"$in": other_ids}}, {near: 1}
            )
            return sorted({doc[near] for doc in links})
        # no filters: start from the (usually fewer) links of the role, keep non-archived ends
        pairs = [
            (doc[near], doc[far])
            for doc in self._associations.find({"roleId": condition.role_id}, {near: 1, far: 1})
        ]
        if not pairs:
            return []
        live = {
            doc["_id"]
            for doc in self._entities.find(
                {"_id": {"$in": sorted({other for _, other in pairs})}, "archived": False},
                {"_id": 1},
            )
        }
        return sorted({mine for mine, other in pairs if other in live})

    # -- writes ----------------------------------------------------------------------------------

    def apply(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        token = uuid.uuid4().hex
        if self.supports_transactions():
            with self._errors("applying a write batch"), self._client.start_session() as session:
                session.with_transaction(lambda s: self._apply(batch, token, s, None))
            return
        undo = _UndoLog(self._db, token)
        try:
            with self._errors("applying a write batch"):
                self._apply(batch, token, None, undo)
        except BaseException as failure:
            undo.run(failure, self.url)
            raise

    def _apply(
        self,
        batch: WriteBatch,
        token: str,
        session: ClientSession | None,
        undo: _UndoLog | None,
    ) -> None:
        """Validate the batch against the current state, then write it (recording undo)."""
        plan = _Plan.make(self._db, batch, token, session)
        entities = self._entities
        associations = self._associations
        meta = self._db[_META]

        def record(collection: str, originals: dict[str, Document | None]) -> None:
            if undo is not None:
                undo.record(collection, originals)

        if plan.insert_documents:
            record(_ENTITIES, {doc["_id"]: None for doc in plan.insert_documents})
            entities.insert_many(plan.insert_documents, ordered=True, session=session)
        if plan.update_operations:
            record(_ENTITIES, {op[0]: plan.originals.get(op[0]) for op in plan.update_operations})
            result = entities.bulk_write(
                [
                    ReplaceOne({"_id": rt_id, "rtVersion": version}, document)
                    for rt_id, version, document in plan.update_operations
                ],
                ordered=True,
                session=session,
            )
            if result.matched_count != len(plan.update_operations):
                raise Conflict(
                    "an entity of the batch was changed by another writer while the batch was "
                    "written; re-read it and retry"
                )
        if plan.erase_ids:
            record(_ASSOCIATIONS, {doc["_id"]: doc for doc in plan.erased_links})
            associations.delete_many(
                {"_id": {"$in": [doc["_id"] for doc in plan.erased_links]}}, session=session
            )
            record(_ENTITIES, {rt_id: plan.originals.get(rt_id) for rt_id in plan.erase_ids})
            entities.delete_many({"_id": {"$in": plan.erase_ids}}, session=session)
        if plan.removed_links:
            record(_ASSOCIATIONS, {doc["_id"]: doc for doc in plan.removed_links})
            associations.delete_many(
                {"_id": {"$in": [doc["_id"] for doc in plan.removed_links]}}, session=session
            )
        if plan.added_links:
            record(_ASSOCIATIONS, {doc["_id"]: None for doc in plan.added_links})
            associations.bulk_write(
                [
                    UpdateOne(
                        {"_id": doc["_id"]},
                        {"$setOnInsert": {k: v for k, v in doc.items() if k != "_id"}},
                        upsert=True,
                    )
                    for doc in plan.added_links
                ],
                ordered=True,
                session=session,
            )
        if plan.parent_updates:
            record(_ENTITIES, plan.parent_originals)
            entities.bulk_write(
                [
                    UpdateOne(
                        {"_id": rt_id},
                        {"$set": {_BATCH: token}, "$unset": {_PARENT: ""}}
                        if value is None
                        else {"$set": {_PARENT: value, _BATCH: token}},
                    )
                    for rt_id, value in plan.parent_updates
                ],
                ordered=True,
                session=session,
            )
        if plan.meta_puts or plan.meta_deletes:
            record(_META, plan.meta_originals)
            if plan.meta_deletes:
                meta.delete_many({"_id": {"$in": plan.meta_deletes}}, session=session)
            if plan.meta_puts:
                meta.bulk_write(
                    [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in plan.meta_puts],
                    ordered=True,
                    session=session,
                )

    # -- indexes ---------------------------------------------------------------------------------

    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        wanted = {spec.name: spec for spec in specs}
        with self._errors("creating indexes"):
            stored = {doc["_id"]: doc for doc in self._db[_INDEXES].find()}
            for spec in wanted.values():
                if spec.kind in ("unique", "unique_not_deleted"):
                    _check_existing_unique(self._entities, spec)
            entities = self._entities
            server_indexes = {info["name"] for info in entities.list_indexes() if "name" in info}
            for name in stored.keys() - wanted.keys():
                _drop_server_index(entities, server_indexes, name)
                self._db[_INDEXES].delete_one({"_id": name})
            for name, spec in wanted.items():
                document = _index_document(spec)
                if stored.get(name) == document:
                    continue
                _drop_server_index(entities, server_indexes, name)
                self._create_server_index(entities, spec)
                self._db[_INDEXES].replace_one({"_id": name}, document, upsert=True)

    def _create_server_index(self, entities: Collection[Document], spec: IndexSpec) -> None:
        fields = [_field(path) for path in spec.paths]
        name = _INDEX_PREFIX + spec.name
        if spec.kind in ("unique", "unique_not_deleted"):
            partial: Document = {"ckTypeId": {"$in": list(spec.type_ids)}}
            partial.update({field: {"$exists": True} for field in fields})
            if spec.kind == "unique_not_deleted":
                partial["archived"] = False
            keys = [(field, ASCENDING) for field in fields]
            if self._create_partial_unique_index(entities, keys, name, partial):
                return
        entities.create_index(
            [("ckTypeId", ASCENDING), *((field, ASCENDING) for field in fields)], name=name
        )
