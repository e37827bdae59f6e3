"""What both clients share when turning API answers into Python: GraphQL data into DataFrames,
error codes into the matching :class:`~workbench.errors.WorkbenchError` classes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from workbench.errors import (
    ErrorDetail,
    WorkbenchError,
    error_class,
)

__all__ = ["error_from_code", "graphql_result", "raise_graphql_errors"]


def error_from_code(
    code: str | None, message: str, details: Iterable[Mapping[str, Any]] = ()
) -> WorkbenchError:
    kind = error_class(code)
    items = [
        ErrorDetail(
            str(d.get("message", "")),
            d.get("location"),
            d.get("element") or d.get("attribute"),
        )
        for d in details
        if isinstance(d, Mapping)
    ]
    error = kind(message, items)
    if kind is WorkbenchError and code:
        error.code = code
    return error


def raise_graphql_errors(errors: Sequence[Mapping[str, Any]]) -> None:
    """Raise the first GraphQL error (``extensions.code``) as a WorkbenchError; the others
    become its details."""
    if not errors:
        return
    first = errors[0]
    extensions = first.get("extensions") or {}
    details: list[Mapping[str, Any]] = [
        {
            "message": e.get("message", ""),
            "location": ".".join(map(str, e.get("path") or [])) or None,
        }
        for e in errors[1:]
    ]
    details += list(extensions.get("details") or [])
    raise error_from_code(
        extensions.get("code"), str(first.get("message", "GraphQL error")), details
    )


def graphql_result(data: Any) -> Any:
    """``data`` of a GraphQL response as a notebook wants it: descend through single-field
    objects; a list (or a connection's ``items``) becomes a pandas DataFrame with nested objects
    flattened to ``a.b`` columns; anything else stays a dict."""
    node = data
    while isinstance(node, Mapping) and len(node) == 1:
        node = next(iter(node.values()))
    if isinstance(node, Mapping) and isinstance(node.get("items"), list):
        node = node["items"]
    if isinstance(node, list) and all(isinstance(item, Mapping) for item in node):
        import pandas as pd

        return pd.json_normalize(node) if node else pd.DataFrame()
    return data
