"""The backend-neutral aggregation node: statistics over the entities an :class:`EntityQuery`
selects, over the whole set or per group.

A value is addressed by an :class:`AggregatePath`: zero or more association hops, then a storage
path on the entity at the far end (``parent->name`` is one outbound hop of the parent role, then
``("attributes", "Name")``). Adapters compute everything in the store (SQL ``GROUP BY``, a
MongoDB aggregation pipeline); nothing here imports a backend.

Semantics every adapter keeps (the contract suite checks them):

- ``count`` of a result or group is the number of matching entities (for a group, of entities
  with those key values); ``count`` measures count non-null values, ``avg``/``sum`` numeric
  ones, ``min``/``max`` compare numbers with numbers and strings (and datetimes) with strings.
- A path across a to-many association joins: an entity linked to two targets is counted in the
  groups of both. An entity without a (non-archived) target has ``None`` for that path.
- Groups are ordered by their keys ascending, missing keys first; ``first``/``after`` page them
  with keyset cursors made by :mod:`workbench.query.cursor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from workbench.query.cursor import encode_cursor
from workbench.query.model import EntityQuery, Path

__all__ = [
    "MEASURE_FUNCTIONS",
    "AggregatePath",
    "AggregateRow",
    "AggregationResult",
    "EntityAggregation",
    "Hop",
    "Measure",
    "MeasureFunction",
]

MeasureFunction = Literal["count", "avg", "sum", "min", "max"]

#: measure functions in their canonical order
MEASURE_FUNCTIONS: tuple[MeasureFunction, ...] = get_args(MeasureFunction)

Hop = tuple[str, Literal["outbound", "inbound"]]
"""One association step: ``(role id, direction)`` from the entity towards the value."""


@dataclass(frozen=True)
class AggregatePath:
    """Where a grouped or measured value lives: ``hops`` to cross, then ``path`` there."""

    path: Path
    hops: tuple[Hop, ...] = ()


@dataclass(frozen=True)
class Measure:
    """``function`` of the values at ``target``; ``label`` names it in results (the user's
    attribute path, such as ``phaseL1.voltage``)."""

    function: MeasureFunction
    target: AggregatePath
    label: str


@dataclass(frozen=True)
class EntityAggregation:
    """Statistics over the entities ``query`` selects (its type ids, rt ids, filters and archived
    flag; its sort and paging are ignored).

    Without ``group_by`` the result has one row over the whole set. With it, one row per distinct
    key tuple; ``first`` (None: all) and ``after`` (a row's cursor) page the groups.
    """

    query: EntityQuery
    measures: tuple[Measure, ...] = ()
    group_by: tuple[AggregatePath, ...] = ()
    first: int | None = None
    after: str | None = None


@dataclass
class AggregateRow:
    """One group (or the whole set): its ``keys`` (aligned with ``group_by``), the number of
    entities and one value per measure (aligned with ``measures``; ``None`` when no value)."""

    keys: tuple[Any, ...]
    count: int
    values: tuple[Any, ...]

    @property
    def cursor(self) -> str:
        """The cursor after this group (made on demand: most groups' cursors go unused)."""
        return encode_cursor(list(self.keys))


@dataclass
class AggregationResult:
    rows: list[AggregateRow]
    has_next_page: bool = False
    end_cursor: str | None = None
