"""The API's metrics and request ids (:mod:`pacs_common.observability`).

``GET /metrics`` exposes, besides the HTTP metrics of every route
(``pacs_http_requests_total``, ``pacs_http_request_duration_seconds``):

- ``pacs_stow_instances_total{outcome="stored"|"failed"}``: instances of STOW-RS requests,
  stored (ReferencedSOPSequence) or refused (FailedSOPSequence); a request refused as a whole
  (400, 413, 415, 503) counts no instance, only its HTTP status;
- ``pacs_stow_bytes_total``: bytes of the instances stored (as received, Part 10).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI, Request
from pacs_common.observability.http import install_observability
from pacs_common.observability.metrics import Metrics
from prometheus_client import Counter

from pacs_api.ingest.pipeline import InstanceResult

SERVICE = "pacs_api"


class ApiMetrics:
    """The API's own metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.stow_instances = Counter(
            "pacs_stow_instances",
            "Instances received by STOW-RS, by outcome (stored or failed).",
            ["outcome"],
            registry=metrics.registry,
        )
        self.stow_bytes = Counter(
            "pacs_stow_bytes",
            "Bytes of the instances STOW-RS stored.",
            registry=metrics.registry,
        )
        for outcome in ("stored", "failed"):
            self.stow_instances.labels(outcome)

    def stowed(self, results: Iterable[InstanceResult]) -> None:
        """Count the instances of one answered STOW-RS request."""
        stored = failed = size = 0
        for result in results:
            if result.failure is None:
                stored += 1
                size += result.size
            else:
                failed += 1
        self.stow_instances.labels("stored").inc(stored)
        self.stow_instances.labels("failed").inc(failed)
        self.stow_bytes.inc(size)


def install(app: FastAPI) -> None:
    """The request-id middleware, the HTTP metrics and ``GET /metrics`` on *app*."""
    metrics = Metrics()
    install_observability(app, metrics, service=SERVICE)
    app.state.api_metrics = ApiMetrics(metrics)


def api_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.api_metrics
    return metrics
