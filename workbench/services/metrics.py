"""Prometheus metrics of a service: request counts and latency per route template.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (several apps may live in
one process: tests, ``workbench up``). Routes are labelled by their template
(``/tenants/{tenantId}/graphql``), never by the concrete path, so label cardinality stays fixed.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["UNMATCHED_ROUTE", "ServiceMetrics"]

#: label of requests that matched no route (kept as one value to bound cardinality)
UNMATCHED_ROUTE = "<unmatched>"

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The metrics one service exports on ``/metrics``."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "workbench_http_requests",
            "HTTP requests handled, by method, route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "workbench_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["service", "method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "workbench_http_requests_in_flight",
            "Requests being handled now.",
            ["service"],
            registry=self.registry,
        )
        self.schema_builds = Counter(
            "workbench_graphql_schema_builds",
            "Tenant GraphQL schemas built (first use and rebuilds after model changes).",
            ["service"],
            registry=self.registry,
        )
        self.service = service
        self._in_flight = self.in_flight.labels(service)

    def started(self) -> None:
        self._in_flight.inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._in_flight.dec()
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.latency.labels(self.service, method, route).observe(seconds)

    def schema_built(self) -> None:
        self.schema_builds.labels(self.service).inc()

    async def endpoint(self, _request: Request) -> Response:
        """``GET /metrics`` in the Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
