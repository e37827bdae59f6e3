"""HTTP errors of the services: one JSON shape, statuses from the error codes, no stack traces.

Every error response is ``{"code": ..., "message": ..., "details": [...], "requestId": ...}``
with the status of :data:`STATUS_BY_CODE`. Unexpected exceptions are logged with the request id
and answered with a 500 whose message gives that id and nothing of the exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workbench.errors import WorkbenchError
from workbench.services.context import current_request_id

__all__ = [
    "STATUS_BY_CODE",
    "error_body",
    "error_response",
    "install_error_handlers",
    "internal_error_response",
    "status_for",
]

log = logging.getLogger("workbench.services")

#: HTTP status of each :attr:`WorkbenchError.code`
STATUS_BY_CODE: Mapping[str, int] = {
    "VALIDATION_FAILED": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NOT_ACCEPTABLE": 406,
    "CONFLICT": 409,
    "LIMIT_EXCEEDED": 400,
    "PAYLOAD_TOO_LARGE": 413,
    "TOO_MANY_REQUESTS": 429,
    "CANCELLED": 499,
    "TIMEOUT": 503,
    "MODEL_ERROR": 422,
    "STORE_LOCKED": 503,
    "BACKEND_UNAVAILABLE": 503,
}

_CODE_BY_STATUS = {
    400: "VALIDATION_FAILED",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
}


def status_for(error: WorkbenchError) -> int:
    """The HTTP status of ``error`` (500 for codes without a mapping)."""
    return STATUS_BY_CODE.get(error.code, 500)


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "details": details or [],
        "requestId": current_request_id(),
    }


def _details(error: WorkbenchError) -> list[dict[str, Any]]:
    return [
        {
            key: value
            for key, value in (
                ("message", d.message),
                ("location", d.location),
                ("element", d.element),
            )
            if value is not None
        }
        for d in error.details
    ]


def error_response(error: WorkbenchError) -> JSONResponse:
    """The response for a :class:`WorkbenchError` raised while handling a request."""
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.warning("request failed: %s", error.message, extra={"code": error.code})
    return JSONResponse(
        error_body(error.code, error.message, _details(error)), status, headers=headers
    )


async def _workbench_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WorkbenchError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "HTTP_ERROR")
    message = str(exc.detail) if exc.detail else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /openapi.json for the routes this service offers"
    return JSONResponse(
        error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _request_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for problem in exc.errors():
        location = ".".join(str(part) for part in problem.get("loc", ()))
        details.append({"message": str(problem.get("msg", "invalid")), "location": location})
    return JSONResponse(
        error_body("VALIDATION_FAILED", "the request's parameters are invalid", details), 422
    )


def internal_error_response(exc: BaseException) -> JSONResponse:
    """Log ``exc`` with the request id and answer 500 without any of its content."""
    request_id = current_request_id()
    log.error("internal error (request %s)", request_id, exc_info=exc)
    return JSONResponse(
        error_body(
            "INTERNAL",
            f"internal server error (request id {request_id}); the request looked valid: "
            "retry, or report the request id to the operator",
        ),
        500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one JSON shape."""
    app.add_exception_handler(WorkbenchError, _workbench_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    # anything else is answered by RequestMiddleware (internal_error_response), which sits
    # inside Starlette's ServerErrorMiddleware and so sees the exception first
