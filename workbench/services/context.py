"""Per-request values visible to logs and error responses: the request id and the tenant."""

from __future__ import annotations

import logging
from contextvars import ContextVar

__all__ = ["RequestContextFilter", "current_request_id", "request_id_var", "tenant_var"]

request_id_var: ContextVar[str | None] = ContextVar("workbench_request_id", default=None)
tenant_var: ContextVar[str | None] = ContextVar("workbench_tenant", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` (and ``tenant``, when known) to every record logged during a request,
    so the JSON log lines of one request can be found together."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        tenant = tenant_var.get()
        if tenant is not None and not hasattr(record, "tenant"):
            record.tenant = tenant
        return True
