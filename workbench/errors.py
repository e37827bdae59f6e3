"""The one error hierarchy of Mesh Workbench.

Every error a user can meet derives from :class:`WorkbenchError`. Messages name the thing, the bad
value and the fix. Driver exceptions (sqlite3, pymongo, duckdb, crate) are translated into these at
the adapter boundary so callers never catch a backend's exception type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "BackendUnavailable",
    "Cancelled",
    "Conflict",
    "ErrorDetail",
    "Forbidden",
    "LimitExceeded",
    "ModelError",
    "NotFound",
    "PayloadTooLarge",
    "SecretKeyError",
    "StoreLocked",
    "TimedOut",
    "TooManyRequests",
    "Unauthenticated",
    "ValidationError",
    "WorkbenchError",
    "cut",
    "error_class",
    "shown",
]


@dataclass(frozen=True)
class ErrorDetail:
    """One problem inside a larger error: where it is and what is wrong.

    ``location`` is a file, a row number, an entity index or an attribute path; ``element`` is the
    model element or entity concerned; ``message`` says what is wrong and how to fix it.
    """

    message: str
    location: str | None = None
    element: str | None = None

    def __str__(self) -> str:
        prefix = ": ".join(part for part in (self.location, self.element) if part)
        return f"{prefix}: {self.message}" if prefix else self.message


class WorkbenchError(Exception):
    """Base class of every error raised by Mesh Workbench.

    ``code`` is the stable machine-readable code (also used as GraphQL ``extensions.code``).
    ``details`` lists the individual problems when one operation found several.
    """

    code = "INTERNAL"

    def __init__(self, message: str, details: Sequence[ErrorDetail] = ()) -> None:
        # a message quoting its input (ids, values, a document) is cut: never echo huge input
        self.message = cut(message, MAX_MESSAGE)
        self.details: list[ErrorDetail] = [
            d
            if len(d.message) <= MAX_DETAIL
            else ErrorDetail(cut(d.message, MAX_DETAIL), d.location, d.element)
            for d in details
        ]
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.details:
            return self.message
        lines = [self.message] + [f"  - {detail}" for detail in self.details]
        return "\n".join(lines)


class ModelError(WorkbenchError, ValueError):
    """A Construction Kit library or model is invalid (bad reference, cycle, clash, ...)."""

    code = "MODEL_ERROR"


class ValidationError(WorkbenchError, ValueError):
    """Input data (an entity, a stream point, a filter, a CLI argument) is invalid."""

    code = "VALIDATION_FAILED"


class NotFound(WorkbenchError, LookupError):
    """A tenant, library, type or entity does not exist."""

    code = "NOT_FOUND"


class Conflict(WorkbenchError):
    """The write collides with the current state (stale rtVersion, unique index, existing id)."""

    code = "CONFLICT"


class Unauthenticated(WorkbenchError):
    """No credentials or invalid credentials."""

    code = "UNAUTHENTICATED"


class Forbidden(WorkbenchError, PermissionError):
    """The caller is authenticated but may not do this."""

    code = "FORBIDDEN"


class BackendUnavailable(WorkbenchError, ConnectionError):
    """A backend server cannot be reached or a driver is not installed."""

    code = "BACKEND_UNAVAILABLE"


class SecretKeyError(WorkbenchError):
    """Stored secrets cannot be decrypted: the platform's key file is missing or different."""

    code = "SECRET_KEY"


class StoreLocked(Conflict):
    """An embedded store file is owned by another process (DuckDB allows one writer)."""

    code = "STORE_LOCKED"


class LimitExceeded(ValidationError):
    """A request exceeds a resource limit (GraphQL depth, cost or aliases, a value's size); the
    message names the measured value, the limit and the setting that raises it."""

    code = "LIMIT_EXCEEDED"


class PayloadTooLarge(LimitExceeded):
    """A request body is larger than allowed (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(WorkbenchError):
    """Too many heavy requests run at once (HTTP 429); retry after ``retry_after`` seconds."""

    code = "TOO_MANY_REQUESTS"

    def __init__(
        self, message: str, details: Sequence[ErrorDetail] = (), *, retry_after: int = 5
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, details)


class TimedOut(WorkbenchError, TimeoutError):
    """A request ran past its time limit and was stopped."""

    code = "TIMEOUT"


class Cancelled(WorkbenchError):
    """A request's work was stopped because its client went away."""

    code = "CANCELLED"


#: the errors a client raises as their own class when a server answers with their code; any
#: other code arrives as a WorkbenchError carrying it
_RAISED_BY_CODE: dict[str, type[WorkbenchError]] = {
    kind.code: kind
    for kind in (
        ModelError,
        ValidationError,
        NotFound,
        Conflict,
        StoreLocked,
        Unauthenticated,
        Forbidden,
        BackendUnavailable,
    )
}


def error_class(code: str | None) -> type[WorkbenchError]:
    """The error class a client raises for a server's error ``code`` (``extensions.code`` in
    GraphQL, ``code`` in REST error bodies); WorkbenchError for other codes."""
    return _RAISED_BY_CODE.get(code or "", WorkbenchError)


#: longest message and detail message of an error, in characters (the rest is cut)
MAX_MESSAGE = 1000
MAX_DETAIL = 500


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut: {len(text):,} characters)"


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about user input (never
    echo a huge input back)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…({len(text):,} characters)"


@dataclass
class _Collector:
    """Collects :class:`ErrorDetail` items and raises them together (validate-all-then-fail)."""

    details: list[ErrorDetail] = field(default_factory=list)

    def add(self, message: str, location: str | None = None, element: str | None = None) -> None:
        self.details.append(ErrorDetail(message, location, element))

    def raise_if_any(self, error_type: type[WorkbenchError], summary: str) -> None:
        if self.details:
            raise error_type(summary, self.details)


ErrorCollector = _Collector
