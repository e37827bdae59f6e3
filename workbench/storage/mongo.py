"""The MongoDB entity store: one database per tenant, spoken to through ``pymongo``.

Works against MongoDB and against FerretDB v1 (MongoDB wire protocol on SQLite/PostgreSQL). The
URL is ``mongodb://[user:pass@]host:port/<database>[?options]``; the database is the tenant's and
holds four collections:

- ``entities``: ``{_id: rtId, ckTypeId, rtWellKnownName, rtVersion, rtCreationDateTime,
  rtChangedDateTime, archived, attributes: {...}}``
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

import json
import re
import string
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidURI,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)
from pymongo.uri_parser import parse_uri

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    NotFound,
    ValidationError,
    WorkbenchError,
)
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
    Path,
    SortKey,
    TextSearch,
)
from workbench.storage.base import (
    EntityStore,
    IndexSpec,
    StoredAssociation,
    StoredEntity,
    WriteBatch,
)
from workbench.storage.encoding import DATETIME_MARKER, escape_string, utc_text

__all__ = ["MongoEntityStore", "decode_datetime", "encode_datetime"]

Document = dict[str, Any]

_ENTITIES = "entities"
_ASSOCIATIONS = "associations"
_META = "meta"
_INDEXES = "indexes"
#: field holding the token of the batch that last wrote a document (undo finds its own writes)
_BATCH = "_wbBatch"
#: prefix of the server indexes made from IndexSpecs
_INDEX_PREFIX = "wb_"

# The encoding shared with the SQLite adapter (workbench/storage/encoding.py); the pattern below is
# the exact text utc_text writes, behind the marker.
_DT_RE = re.compile(r"\$dt:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z\Z")

#: first path element -> stored field, for the system fields queries may use
_SYSTEM_FIELDS = {
    "rtId": "_id",
    "ckTypeId": "ckTypeId",
    "rtWellKnownName": "rtWellKnownName",
    "rtVersion": "rtVersion",
    "rtCreationDateTime": "rtCreationDateTime",
    "rtChangedDateTime": "rtChangedDateTime",
    "archived": "archived",
}

#: server error codes meaning "this index form is not supported here" (FerretDB NotImplemented,
#: MongoDB CannotCreateIndex / BadValue for partial filter expressions it lacks)
_UNSUPPORTED_INDEX_CODES = frozenset({238, 67, 2, 9})
_AUTH_CODES = frozenset({13, 18})
_DEFAULT_TIMEOUT_MS = 5000
_OR_CHUNK = 500


# -- value encoding ------------------------------------------------------------------------------


def encode_datetime(value: datetime) -> str:
    """A timezone-aware datetime as the sortable fixed-width UTC string stored for it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"datetime {value.isoformat()} has no timezone; pass an aware datetime "
            "(for example datetime.now(UTC))"
        )
    return DATETIME_MARKER + utc_text(value)


def decode_datetime(value: str) -> datetime | None:
    """The datetime a string made by :func:`encode_datetime` stands for, else None."""
    match = _DT_RE.match(value)
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return encode_datetime(value)
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("$$"):
            return value[1:]
        if value.startswith(DATETIME_MARKER):
            decoded = decode_datetime(value)
            return value if decoded is None else decoded
        return value
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _canonical(value: Any) -> str:
    """A hashable key for comparing stored values the way the server's equality does."""

    def normalize(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: normalize(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [normalize(sub) for sub in item]
        return item

    return json.dumps(normalize(value), sort_keys=True, default=str)


def _entity_document(entity: StoredEntity, token: str) -> Document:
    return {
        "_id": entity.rt_id,
        "ckTypeId": entity.ck_type_id,
        "rtWellKnownName": entity.rt_well_known_name,
        "rtVersion": entity.rt_version,
        "rtCreationDateTime": encode_datetime(entity.rt_creation_datetime),
        "rtChangedDateTime": encode_datetime(entity.rt_changed_datetime),
        "archived": bool(entity.archived),
        "attributes": _encode(entity.attributes),
        _BATCH: token,
    }


def _entity_from_document(document: Document) -> StoredEntity:
    created = decode_datetime(document["rtCreationDateTime"])
    changed = decode_datetime(document["rtChangedDateTime"])
    if created is None or changed is None:
        raise WorkbenchError(
            f"entity {document['_id']!r} has malformed system timestamps; "
            "it was not written by this adapter"
        )
    return StoredEntity(
        rt_id=document["_id"],
        ck_type_id=document["ckTypeId"],
        attributes=_decode(document.get("attributes") or {}),
        rt_version=document["rtVersion"],
        rt_creation_datetime=created,
        rt_changed_datetime=changed,
        rt_well_known_name=document.get("rtWellKnownName"),
        archived=bool(document.get("archived", False)),
    )


def _association_id(link: StoredAssociation) -> str:
    return json.dumps([link.role_id, link.source_rt_id, link.target_rt_id])


def _association_document(link: StoredAssociation, token: str) -> Document:
    return {
        "_id": _association_id(link),
        "roleId": link.role_id,
        "sourceRtId": link.source_rt_id,
        "sourceCkTypeId": link.source_ck_type_id,
        "targetRtId": link.target_rt_id,
        "targetCkTypeId": link.target_ck_type_id,
        _BATCH: token,
    }


def _association_from_document(document: Document) -> StoredAssociation:
    return StoredAssociation(
        role_id=document["roleId"],
        source_rt_id=document["sourceRtId"],
        source_ck_type_id=document["sourceCkTypeId"],
        target_rt_id=document["targetRtId"],
        target_ck_type_id=document["targetCkTypeId"],
    )


def _meta_id(namespace: str, key: str) -> str:
    return json.dumps([namespace, key])


def _meta_decode(document: Document) -> dict[str, Any]:
    value: dict[str, Any] = _decode(json.loads(document["document"]))
    return value


# -- query compilation helpers -------------------------------------------------------------------


def _field(path: Path, relative: bool = False) -> str:
    """The dotted field name of a storage path, refusing what would change the query's meaning.

    ``relative`` paths are inside an array element (``$elemMatch``) and have no ``attributes``
    head."""
    if not path:
        raise ValidationError("a filter or sort path is empty; name a system field or attribute")
    for part in path:
        if not part or "." in part or part.startswith("$") or "\x00" in part:
            raise ValidationError(
                f"path {'.'.join(path)!r} has an invalid element {part!r}; path elements must "
                "be non-empty and must not contain '.' or start with '$'"
            )
    if relative:
        return ".".join(path)
    head = path[0]
    if head in _SYSTEM_FIELDS:
        if len(path) > 1:
            raise ValidationError(f"system field {head!r} has no sub-fields (path {path!r})")
        return _SYSTEM_FIELDS[head]
    if head != "attributes" or len(path) < 2:
        raise ValidationError(
            f"path {path!r} is neither a system field ({', '.join(sorted(_SYSTEM_FIELDS))}) "
            "nor an attribute path starting with 'attributes'"
        )
    return ".".join(path)


def _escape_regex(text: str) -> str:
    # Escape ASCII punctuation only: a backslash before punctuation is a literal in both PCRE
    # (MongoDB) and RE2 (FerretDB); before a letter it could start a class such as \d.
    return "".join("\\" + ch if ch in string.punctuation else ch for ch in text)


def _like_regex(pattern: str) -> str:
    # a stored string starting with "$$" carries one escape "$" (see _encode): let a pattern that
    # starts with a literal "$" skip it
    parts = ["^\\$?" if pattern.startswith("$") else "^"]
    for ch in pattern:
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(_escape_regex(ch))
    # \z, not $: without the m flag PCRE's $ also matches before a final newline
    parts.append("\\z")
    return "".join(parts)


def _scalar(value: Any, condition: Condition) -> Any:
    if isinstance(value, list | tuple | dict):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a single "
            f"value, got {value!r}"
        )
    return _encode(value)


def _values(value: Any, condition: Condition) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a list "
            f"of values, got {value!r}"
        )
    return [_encode(item) for item in value]


def _string(value: Any, condition: Condition) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"filter {condition.operator.value} on {'.'.join(condition.path)!r} expects a "
            f"pattern string, got {value!r}"
        )
    return value


def _strings_only(field: str, regex: Document) -> Document:
    """``regex`` on ``field``, never matching an encoded datetime (stored as a string)."""
    return {"$and": [{field: regex}, {field: {"$not": {"$regex": "^\\$dt:"}}}]}


def _compile_condition(condition: Condition, relative: bool = False) -> Document:
    if ANY_ELEMENT in condition.path:
        return _compile_through_array(condition, relative)
    field = _field(condition.path, relative)
    op = condition.operator
    value = condition.value
    if op is Operator.EQUALS:
        return {field: _scalar(value, condition)}
    if op is Operator.NOT_EQUALS:
        return {field: {"$ne": _scalar(value, condition)}}
    if op is Operator.LESS_THAN:
        return {field: {"$lt": _scalar(value, condition)}}
    if op is Operator.LESS_EQUAL_THAN:
        return {field: {"$lte": _scalar(value, condition)}}
    if op is Operator.GREATER_THAN:
        return {field: {"$gt": _scalar(value, condition)}}
    if op is Operator.GREATER_EQUAL_THAN:
        return {field: {"$gte": _scalar(value, condition)}}
    if op is Operator.IN:
        return {field: {"$in": _values(value, condition)}}
    if op is Operator.NOT_IN:
        return {field: {"$nin": _values(value, condition)}}
    if op in (Operator.LIKE, Operator.ANY_LIKE):
        # on an array value the server matches when any element matches: that is ANY_LIKE
        regex = {"$regex": _like_regex(_string(value, condition)), "$options": "is"}
        return _strings_only(field, regex)
    if op is Operator.MATCH_REG_EX:
        pattern = _string(value, condition)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationError(
                f"MATCH_REG_EX pattern {pattern!r} on {'.'.join(condition.path)!r} is not a "
                f"valid regular expression: {exc}"
            ) from None
        return _strings_only(field, {"$regex": pattern})
    if op is Operator.ANY_EQ:
        # the server's equality on an array value matches when any element is equal
        return {field: _scalar(value, condition)}
    if op is Operator.BETWEEN:
        bounds = _values(value, condition)
        if len(bounds) != 2:
            raise ValidationError(
                f"BETWEEN on {'.'.join(condition.path)!r} expects [low, high], got {value!r}"
            )
        return {field: {"$gte": bounds[0], "$lte": bounds[1]}}
    if op is Operator.IS_NULL:
        return {field: None}
    if op is Operator.IS_NOT_NULL:
        return {field: {"$ne": None}}
    raise ValidationError(f"unknown filter operator {op!r}")


def _compile_through_array(condition: Condition, relative: bool) -> Document:
    """Some element of the array satisfies the rest of the path; none does, for the negations.

    A dotted path through an array already means "any element" to the server (and ``$ne`` /
    ``$nin`` mean "no element"), which FerretDB v1 supports; only BETWEEN needs ``$elemMatch`` so
    that both bounds hold for the same element."""
    if condition.operator in (Operator.IS_NULL, Operator.IS_NOT_NULL):
        raise ValidationError(
            f"{'.'.join(condition.path)}: {condition.operator} does not take a path through an "
            "array; test the array itself"
        )
    cut = condition.path.index(ANY_ELEMENT)
    if condition.operator is Operator.BETWEEN:
        inner = _compile_condition(
            Condition(condition.path[cut + 1 :], condition.operator, condition.value),
            relative=True,
        )
        return {_field(condition.path[:cut], relative): {"$elemMatch": inner}}
    dotted = tuple(part for part in condition.path if part != ANY_ELEMENT)
    negated = {Operator.NOT_EQUALS: Operator.EQUALS, Operator.NOT_IN: Operator.IN}
    if condition.operator in negated:
        # "no element matches", spelled $nor so FerretDB v1 (whose $nin over arrays is not
        # element-wise) gives the same answer as MongoDB
        positive = Condition(dotted, negated[condition.operator], condition.value)
        return {"$nor": [_compile_condition(positive, relative)]}
    return _compile_condition(Condition(dotted, condition.operator, condition.value), relative)


def _compile_text_search(search: TextSearch) -> Document:
    if not search.paths:
        return {"_id": {"$in": []}}
    regex = {"$regex": _escape_regex(search.term), "$options": "i"}
    clauses = [_strings_only(_field(path), dict(regex)) for path in search.paths]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _and(clauses: Sequence[Document]) -> Document:
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": list(clauses)}


def _keyset_predicate(sort: Sequence[SortKey], values: Sequence[Any]) -> Document:
    """Rows strictly after ``values`` in ``sort`` order, with null/missing first ascending and
    last descending (what MongoDB and FerretDB both do)."""
    disjuncts: list[Document] = []
    equal_prefix: list[Document] = []
    for key, raw in zip(sort, values, strict=True):
        field = _field(key.path)
        value = _encode(raw)
        after: Document | None
        if key.descending:
            after = None if value is None else {"$or": [{field: {"$lt": value}}, {field: None}]}
        else:
            after = {field: {"$ne": None}} if value is None else {field: {"$gt": value}}
        if after is not None:
            disjuncts.append(_and([*equal_prefix, after]))
        equal_prefix.append({field: value})
    if not disjuncts:
        return {"_id": {"$in": []}}
    return disjuncts[0] if len(disjuncts) == 1 else {"$or": disjuncts}


def _value_at(document: Document, field: str) -> Any:
    current: Any = document
    for part in field.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _scrub_url(url: str) -> str:
    """``url`` without the password (what errors and ``store.url`` show)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, hosts = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


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


class MongoEntityStore(EntityStore):
    """Entity store in one MongoDB (or FerretDB) database; see the module docstring."""

    def __init__(self, client: MongoClient[Document], database: str, url: str) -> None:
        self._client = client
        self._db: Database[Document] = client[database]
        self.url = url
        self._transactions: bool | None = None
        self._partial_indexes: bool | None = None

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

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate pymongo exceptions raised while doing ``action`` into workbench errors."""
        try:
            yield
        except WorkbenchError:
            raise
        except DuplicateKeyError as exc:
            raise Conflict(
                f"{action} in MongoDB at {self.url} hit a unique index: "
                f"{(exc.details or {}).get('errmsg', exc)}"
            ) from exc
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") == 11000 for error in errors):
                raise Conflict(
                    f"{action} in MongoDB at {self.url} hit a unique index: "
                    f"{errors[0].get('errmsg')}"
                ) from exc
            raise WorkbenchError(f"{action} in MongoDB at {self.url} failed: {errors}") from exc
        except ServerSelectionTimeoutError as exc:
            seconds = self._client.options.server_selection_timeout
            raise BackendUnavailable(
                f"MongoDB at {self.url} did not answer within {seconds:g} s while {action}; "
                "check that the server runs and that host and port in the URL are right"
            ) from exc
        except ConnectionFailure as exc:
            raise BackendUnavailable(
                f"lost the connection to MongoDB at {self.url} while {action} ({exc}); retry "
                "when the server is reachable again"
            ) from exc
        except OperationFailure as exc:
            message = (exc.details or {}).get("errmsg", str(exc))
            if exc.code in _AUTH_CODES:
                raise BackendUnavailable(
                    f"MongoDB at {self.url} refused {action}: {message}; check the user and "
                    "password in the URL and the user's roles on the database"
                ) from exc
            if isinstance(exc, WriteError):
                raise ValidationError(
                    f"MongoDB at {self.url} rejected a document while {action}: {message}"
                ) from exc
            raise WorkbenchError(f"MongoDB at {self.url} failed {action}: {message}") from exc
        except (InvalidDocument, OverflowError) as exc:
            raise ValidationError(
                f"a value cannot be stored in MongoDB while {action}: {exc}; values must be "
                "JSON-like (str, int within 64 bits, float, bool, None, list, dict) or datetimes"
            ) from exc
        except PyMongoError as exc:
            raise WorkbenchError(f"MongoDB at {self.url} failed {action}: {exc}") from exc

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
        from workbench.storage.mongo_aggregate import aggregate_mongo  # it builds on this module

        return aggregate_mongo(self, aggregation)

    def supports_aggregation_pipeline(self) -> bool:
        """True when one pipeline (``$lookup``, ``$avg``/``$min``/``$max``) does an aggregation;
        False on FerretDB v1, where it runs in steps (see :mod:`.mongo_aggregate`)."""
        if self._transactions is None:
            self._probe()
        return self._pipeline

    def supports_association_measures(self) -> bool:
        return self.supports_aggregation_pipeline()

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
        plan = _Plan.make(self, batch, token, session)
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

    def _unique_rules(self, session: ClientSession | None) -> list[_UniqueRule]:
        rules = [_WELL_KNOWN_NAME_RULE]
        for doc in self._db[_INDEXES].find(
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

    def ensure_indexes(self, specs: Iterable[IndexSpec]) -> None:
        wanted = {spec.name: spec for spec in specs}
        with self._errors("creating indexes"):
            stored = {doc["_id"]: doc for doc in self._db[_INDEXES].find()}
            for spec in wanted.values():
                if spec.kind in ("unique", "unique_not_deleted"):
                    self._check_existing_unique(spec)
            entities = self._entities
            server_indexes = {info["name"] for info in entities.list_indexes() if "name" in info}
            for name in stored.keys() - wanted.keys():
                self._drop_server_index(entities, server_indexes, name)
                self._db[_INDEXES].delete_one({"_id": name})
            for name, spec in wanted.items():
                document = _index_document(spec)
                if stored.get(name) == document:
                    continue
                self._drop_server_index(entities, server_indexes, name)
                self._create_server_index(entities, spec)
                self._db[_INDEXES].replace_one({"_id": name}, document, upsert=True)

    def _drop_server_index(
        self, entities: Collection[Document], existing: set[str], name: str
    ) -> None:
        server_name = _INDEX_PREFIX + name
        if server_name in existing:
            entities.drop_index(server_name)
            existing.discard(server_name)

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

    def _check_existing_unique(self, spec: IndexSpec) -> None:
        """Raise Conflict when stored entities already violate the unique ``spec``."""
        fields = [_field(path) for path in spec.paths]
        match: Document = {"ckTypeId": {"$in": list(spec.type_ids)}}
        match.update({field: {"$ne": None} for field in fields})
        if spec.kind == "unique_not_deleted":
            match["archived"] = False
        group_key = {f"k{i}": f"${field}" for i, field in enumerate(fields)}
        duplicates = list(
            self._entities.aggregate(
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

    @classmethod
    def make(
        cls,
        store: MongoEntityStore,
        batch: WriteBatch,
        token: str,
        session: ClientSession | None,
    ) -> _Plan:
        plan = cls()
        entities = store._db[_ENTITIES]
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
        associations = store._db[_ASSOCIATIONS]
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
        plan._plan_meta(store, batch, token, session)
        plan._check_unique(store, state, session)
        return plan

    def _plan_meta(
        self,
        store: MongoEntityStore,
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
            for doc in store._db[_META].find({"_id": {"$in": list(final)}}, session=session):
                self.meta_originals[doc["_id"]] = doc

    def _check_unique(
        self,
        store: MongoEntityStore,
        state: dict[str, Document | None],
        session: ClientSession | None,
    ) -> None:
        """Every unique rule holds for the state after the batch (batch docs + untouched ones)."""
        written = [doc for doc in state.values() if doc is not None]
        if not written:
            return
        excluded = list(state)
        entities = store._db[_ENTITIES]
        for rule in store._unique_rules(session):
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
