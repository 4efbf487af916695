"""The API's metrics and request ids (:mod:`pacs_common.observability`).

``GET /metrics`` exposes, besides the HTTP metrics of every route
(``pacs_http_requests_total``, ``pacs_http_request_duration_seconds``):

- ``pacs_stow_instances_total{outcome="stored"|"failed"}``: instances of STOW-RS requests,
  stored (ReferencedSOPSequence) or refused (FailedSOPSequence); a request refused as a whole
  (400, 413, 415, 503) counts no instance, only its HTTP status;
- ``pacs_stow_bytes_total``: bytes of the instances stored (as received, Part 10);
- ``pacs_quarantine_entries``: images held in the quarantine (incomplete Pixel Data), counted
  in the index at scrape time (the same answer from every process and replica): an operator
  alerts on it rising, since each entry is an image a modality sent that is not in the archive;
- ``pacs_audit_records_waiting``: audit records the answering process has written to its
  stream but not yet to the ``audit_event`` table (group commit; it grows while the database is
  away, and what waits when a process crashes is in the stream only).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI, Request
from pacs_common.observability.http import install_observability
from pacs_common.observability.metrics import GaugeCollector, Metrics
from prometheus_client import Counter

from pacs_api.audit.log import AuditLog
from pacs_api.ingest.pipeline import InstanceResult
from pacs_api.quarantine.repository import QuarantineRepository

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


def install(app: FastAPI, quarantine: QuarantineRepository, audit: AuditLog) -> None:
    """The request-id middleware, the HTTP metrics and ``GET /metrics`` on *app*, with the
    gauges read at scrape time from *quarantine* and *audit*."""
    metrics = Metrics()
    install_observability(app, metrics, service=SERVICE)
    app.state.api_metrics = ApiMetrics(metrics)
    metrics.add_collector(
        GaugeCollector(
            "pacs_quarantine_entries",
            "Images held in the quarantine (incomplete Pixel Data), not in the archive.",
            [],
            lambda: [((), float(quarantine.count()))],
        )
    )
    metrics.add_collector(
        GaugeCollector(
            "pacs_audit_records_waiting",
            "Audit records of this process in its stream, not yet in the audit table.",
            [],
            lambda: [((), float(audit.waiting))],
        )
    )


def api_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.api_metrics
    return metrics
