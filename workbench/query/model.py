"""The backend-neutral entity query model: filters, text search, sorting, keyset paging.

Queries here speak *storage paths*, not GraphQL names: a path is a tuple of keys into the stored
entity document. System fields are one-element paths (``("rtId",)``, ``("rtVersion",)``, see
:data:`SYSTEM_FIELDS`); attribute values live under ``"attributes"`` keyed by the attribute's name
on its type, so ``phaseL1.voltage`` becomes ``("attributes", "PhaseL1", "Voltage")``. The runtime
layer translates user-facing names (and enum names to keys) into this model; adapters compile it to
SQL or to MongoDB filters. Nothing here imports a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "ANY_ELEMENT",
    "SYSTEM_FIELDS",
    "AssociationCondition",
    "Condition",
    "EntityQuery",
    "Filter",
    "Operator",
    "Page",
    "Path",
    "SortKey",
    "TextSearch",
]

Path = tuple[str, ...]

#: A path element that steps into every element of an array (``("attributes", "Phases", ANY,
#: "Voltage")``): the condition holds when *some* element satisfies it; for ``NOT_EQUALS`` and
#: ``NOT_IN`` when *no* element equals / is in the list. ``IS_NULL``/``IS_NOT_NULL`` and sorting
#: do not take such paths.
ANY_ELEMENT = "[]"

#: Top-level fields every stored entity has (one-element paths).
SYSTEM_FIELDS = frozenset(
    {"rtId", "ckTypeId", "rtWellKnownName", "rtCreationDateTime", "rtChangedDateTime", "rtVersion"}
)


class Operator(StrEnum):
    """Field-filter operators (GRAPHQL_API.md). Values are the GraphQL enum names."""

    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    LESS_THAN = "LESS_THAN"
    LESS_EQUAL_THAN = "LESS_EQUAL_THAN"
    GREATER_THAN = "GREATER_THAN"
    GREATER_EQUAL_THAN = "GREATER_EQUAL_THAN"
    IN = "IN"
    NOT_IN = "NOT_IN"
    LIKE = "LIKE"
    MATCH_REG_EX = "MATCH_REG_EX"
    ANY_EQ = "ANY_EQ"
    ANY_LIKE = "ANY_LIKE"
    BETWEEN = "BETWEEN"
    IS_NULL = "IS_NULL"
    IS_NOT_NULL = "IS_NOT_NULL"


@dataclass(frozen=True)
class Condition:
    """``path OPERATOR value``.

    Value shapes: a scalar for comparisons; a list for ``IN``/``NOT_IN``; a two-item list
    ``[low, high]`` (inclusive) for ``BETWEEN``; a pattern for ``LIKE``/``ANY_LIKE`` where ``%``
    matches any run and ``_`` one character, case-insensitive; a Python ``re`` pattern for
    ``MATCH_REG_EX``; ``None`` for ``IS_NULL``/``IS_NOT_NULL`` (a missing value is null).
    ``ANY_EQ``/``ANY_LIKE`` match when any element of an array value matches. ``NOT_EQUALS`` and
    ``NOT_IN`` also match entities where the value is missing. Scalars are ``str``, ``int``,
    ``float``, ``bool`` or timezone-aware ``datetime``.
    """

    path: Path
    operator: Operator
    value: Any = None


@dataclass(frozen=True)
class AssociationCondition:
    """Matches entities having at least one association (role, direction) whose other end
    satisfies every filter in ``filters`` (and is not archived).

    ``direction="outbound"``: the entity is the source and the filters apply to targets;
    ``"inbound"``: the entity is the target and the filters apply to sources.
    """

    role_id: str
    direction: Literal["outbound", "inbound"]
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class TextSearch:
    """Case-insensitive substring search of ``term`` in any of ``paths`` (string values)."""

    term: str
    paths: tuple[Path, ...]


Filter = Condition | AssociationCondition | TextSearch


@dataclass(frozen=True)
class SortKey:
    path: Path
    descending: bool = False


@dataclass(frozen=True)
class EntityQuery:
    """A page request over entities. Filters combine with AND.

    ``type_ids`` restricts ``ckTypeId`` (the caller expands subtypes for polymorphic queries);
    ``None`` means any type. The sort always ends with ``rtId`` ascending as a tie-breaker, so a
    cursor (from :mod:`workbench.query.cursor`) identifies one position: paging is keyset paging.
    Missing values sort before present ones in ascending order (after them when descending).
    ``first=None`` returns every match. ``item_cursors=False``: the caller needs only the page's
    ``end_cursor``, so a store may leave :attr:`Page.cursors` empty (it costs one encoding a row).
    """

    type_ids: tuple[str, ...] | None = None
    rt_ids: tuple[str, ...] | None = None
    filters: tuple[Filter, ...] = ()
    sort: tuple[SortKey, ...] = ()
    first: int | None = None
    after: str | None = None
    include_total: bool = False
    include_archived: bool = False
    item_cursors: bool = True

    def effective_sort(self) -> tuple[SortKey, ...]:
        """The sort with the ``rtId`` tie-breaker appended (unless already the last key)."""
        if self.sort and self.sort[-1].path == ("rtId",):
            return self.sort
        return (*self.sort, SortKey(("rtId",)))


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of results; ``cursors[i]`` is the cursor *after* ``items[i]``."""

    items: list[T]
    has_next_page: bool
    end_cursor: str | None
    cursors: list[str] = field(default_factory=list)
    total_count: int | None = None
