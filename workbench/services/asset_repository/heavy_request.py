"""Heavy requests: :func:`heavy_request` holds one of the tenant's slots for the request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from workbench.limits import current_cancellation, current_limits, heavy_slots
from workbench.services.access import TenantAccess

__all__ = ["heavy_request"]


@contextmanager
def heavy_request(access: TenantAccess, what: str, *, timeout: bool = False) -> Iterator[None]:
    """Hold one of the tenant's heavy-request slots (429 when none is free) and, with
    ``timeout``, limit the time to ``export_timeout_s``; no-op outside a service request."""
    limits = current_limits()
    if limits is None:
        yield
        return
    cancellation = current_cancellation()
    with heavy_slots.hold(access.tenant.id, what, limits):
        if not timeout or cancellation is None:
            yield
            return
        seconds = limits.export_timeout_s
        with cancellation.limit_time(
            seconds, f"{what} (limit {seconds:g} s, WORKBENCH_EXPORT_TIMEOUT_S)"
        ):
            yield
