"""GraphQL errors as clients see them: ``extensions.code`` from :class:`WorkbenchError`, the
failing path, details naming the attribute; internal errors masked (logged with a reference)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError

from workbench.errors import WorkbenchError

__all__ = ["INTERNAL", "shape_error", "shape_errors"]

log = logging.getLogger("workbench.graphql")

#: code of errors that are bugs or outages, not the caller's fault (message masked)
INTERNAL = "INTERNAL"


def _workbench_extensions(error: WorkbenchError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": error.code}
    if error.details:
        extensions["details"] = [
            {
                k: v
                for k, v in (
                    ("message", d.message),
                    ("location", d.location),
                    ("attribute", d.element),
                )
                if v is not None
            }
            for d in error.details
        ]
    return extensions


def _message(error: WorkbenchError) -> str:
    if not error.details:
        return error.message
    return f"{error.message}: " + "; ".join(str(d) for d in error.details)


def shape_error(error: GraphQLError) -> GraphQLError:
    """The client-facing form of ``error`` (a new error; ``error`` is left as it is)."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, WorkbenchError):
        message, extensions = _message(original), _workbench_extensions(original)
    elif original is None or error.path is None:
        # the document or its variables do not fit the schema: the caller's to fix
        message, extensions = error.message, {"code": "VALIDATION_FAILED"}
    else:
        reference = uuid.uuid4().hex[:12]
        log.error(
            "internal error at %s (reference %s)",
            ".".join(str(p) for p in error.path),
            reference,
            exc_info=original,
        )
        message = (
            f"internal server error (reference {reference}); nothing about the request was "
            "wrong as far as the server can tell: retry, or report the reference to the operator"
        )
        extensions = {"code": INTERNAL, "reference": reference}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), **extensions},
    )


def shape_errors(errors: Sequence[GraphQLError] | None) -> list[GraphQLError] | None:
    return [shape_error(e) for e in errors] if errors else None
