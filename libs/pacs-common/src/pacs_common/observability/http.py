"""HTTP observability for the services' ASGI applications (FastAPI).

:func:`install_observability` adds to an application:

- the :class:`ObservabilityMiddleware`, which for every HTTP request takes the request id
  from a valid ``X-Request-ID`` header or makes one (:mod:`.requestid`), sets it for the
  request's logs, returns it in the response's ``X-Request-ID``, counts the request and times
  it by *route template* (``/dicom-web/studies/{study}/series``: the path with its UIDs would
  make a time series per study), and writes one access record per request;
- ``GET /metrics``, the Prometheus text exposition of the application's :class:`Metrics`.

Metrics: ``pacs_http_requests_total{method, route, status}`` and
``pacs_http_request_duration_seconds{method, route}`` (from the request to the end of the
response body; streamed bodies included). A request no route matched is counted under
``route="unmatched"``. The histogram leaves the status out (as e.g. the
prometheus-fastapi-instrumentator does by default): statuses times buckets would multiply the
series for little.

The access record goes to the ``<service>.access`` logger at INFO (DEBUG for the successful
answers of the probes and ``/metrics``, which come every few seconds), message
``"GET /dicom-web/studies 200"``, with the fields ``method``, ``route``, ``path``, ``status``,
``duration_ms``, ``client`` and ``request_id``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacs_common.observability.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Metrics
from pacs_common.observability.requestid import (
    HEADER,
    new_request_id,
    request_id_scope,
    valid_request_id,
)

UNMATCHED = "unmatched"
#: Probes and scrapes, every few seconds: their successful answers are logged at DEBUG.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class HttpMetrics:
    """The HTTP request metrics of one application."""

    def __init__(self, metrics: Metrics) -> None:
        self.requests = Counter(
            "pacs_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=metrics.registry,
        )
        self.duration = Histogram(
            "pacs_http_request_duration_seconds",
            "Time from an HTTP request to the end of its response, by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=metrics.registry,
        )


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/dicom-web/studies/{study}``), or
    ``unmatched``.

    Starlette leaves the route it chose in ``scope["route"]``. FastAPI (0.16x) keeps the
    routes of an included router as they were declared (``/studies/{study}``, without the
    router's prefix) and records the effective route, prefix included, in its own
    ``scope["fastapi"]``: that one comes first. (Pinned by tests/observability.)
    """
    effective = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(effective, "path_format", None)
    if not template:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


class ObservabilityMiddleware:
    """Request id, metrics and access record for every HTTP request (see the module)."""

    def __init__(self, app: ASGIApp, *, http_metrics: HttpMetrics, service: str) -> None:
        self.app = app
        self.metrics = http_metrics
        self.access = logging.getLogger(f"{service}.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER)
        rid = valid_request_id(given) or new_request_id()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        with request_id_scope(rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started, rid, given)

    def _record(
        self, scope: Scope, status: int, seconds: float, rid: str, given: str | None
    ) -> None:
        method = str(scope["method"])
        route = route_template(scope)
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.duration.labels(method, route).observe(seconds)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": f"{client[0]}:{client[1]}" if client else None,
            "request_id": rid,
        }
        if given is not None and given != rid:
            fields["invalid_request_id"] = given[:64]
        level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
        self.access.log(level, "%s %s %d", method, route, status, extra=fields)


def install_observability(app: FastAPI, metrics: Metrics, *, service: str) -> HttpMetrics:
    """Add the middleware and ``GET /metrics`` to *app*; *service* names the access logger
    (``pacs_api`` -> ``pacs_api.access``)."""
    http_metrics = HttpMetrics(metrics)
    app.add_middleware(ObservabilityMiddleware, http_metrics=http_metrics, service=service)

    @app.get(
        "/metrics",
        tags=["status"],
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The metrics."}},
    )
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return http_metrics
