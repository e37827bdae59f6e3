"""Entities of a CK type matching a filter: the selection every built-in bot starts from.

A filter is what ``entities.find(where=...)`` takes — ``"state EQUALS Faulty"`` strings or
``{"attributePath", "operator", "comparisonValue"}`` dicts — or that list as JSON text, the form
configuration entities (``FieldFilter`` of ``System.Bot/ServiceHook``) keep it in.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.errors import ValidationError
from workbench.runtime.entity import Entity

__all__ = ["PAGE_SIZE", "find_all", "parse_filter"]

PAGE_SIZE = 500


def parse_filter(value: Any, *, what: str = "filter") -> list[Any]:
    """``value`` (None, a string, a dict, a list of them, or such a list as JSON) as a list."""
    if value is None or value in ("", []):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"{what} {text[:80]!r} is not valid JSON ({exc.msg} at {exc.pos}); write a "
                    'JSON list such as ["state EQUALS Faulty"]'
                ) from None
        else:
            return [text]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise ValidationError(
        f"{what} {value!r} is not a filter; give a list of 'attribute OPERATOR value' strings "
        "or attributePath/operator/comparisonValue dicts"
    )


def find_all(
    tenant: Any,
    ck_type_id: str,
    where: Any = None,
    *,
    include_archived: bool = False,
    rt_ids: list[str] | None = None,
) -> list[Entity]:
    """Every entity of ``ck_type_id`` (and its subtypes) matching ``where`` (among ``rt_ids``
    when given), page by page."""
    conditions = parse_filter(where)
    found: list[Entity] = []
    after: str | None = None
    while True:
        page = tenant.entities.find(
            ck_type_id,
            where=conditions,
            first=PAGE_SIZE,
            after=after,
            include_archived=include_archived,
            rt_ids=rt_ids,
        )
        found.extend(page.items)
        if not page.has_next_page or not page.end_cursor:
            return found
        after = page.end_cursor
