"""Backend-neutral query model shared by the entity and stream stores."""

from workbench.query.cursor import decode_cursor, encode_cursor
from workbench.query.model import (
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
