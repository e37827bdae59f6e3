"""Backend-neutral query model shared by the entity and stream stores."""

from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.query.model import (
    ANY_ELEMENT,
    SYSTEM_FIELDS,
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
    "decode_cursor",
    "encode_cursor",
]
