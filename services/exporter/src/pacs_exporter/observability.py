"""The exporter's metrics and request ids (:mod:`pacs_common.observability`).

``GET /metrics`` exposes, besides the HTTP metrics of every route:

- ``pacs_export_jobs{state}``: the jobs in the jobs' table by state (queued, running,
  succeeded, failed, cancelled), counted at scrape time. A gauge read from the table rather
  than counters bumped on transitions: the table is the truth every worker process and
  replica shares, so any of them answers the same without aggregation, a job claimed again
  after its worker died is not counted twice, and finished jobs deleted by their users leave
  the count. It costs one ``GROUP BY state`` on an indexed column per scrape.
- ``pacs_export_job_duration_seconds{outcome}``: how long a worker of this process ran a job,
  by what came of the run (``succeeded``, ``failed``, ``cancelled``, ``retry``: back to the
  queue after the API or the store failed, ``released``: its worker stopped, ``lost``: taken
  over by another worker).

Request ids: a worker runs each job under the job's id as request id, so its WADO-RS and
STOW-RS calls to the API carry ``X-Request-ID: <job id>``; the ``POST /exports`` that created
the job logs the job id under its own request id, linking the two.
"""

from __future__ import annotations

from fastapi import FastAPI
from pacs_common.observability.http import install_observability
from pacs_common.observability.metrics import GaugeCollector, Metrics
from prometheus_client import Histogram

from pacs_exporter.jobs.queue import JobQueue

SERVICE = "pacs_exporter"
#: Job durations: 1 s to 1 h.
JOB_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class ExporterMetrics:
    """The exporter's own metrics, in *metrics*' registry; the job counts read from *queue*."""

    def __init__(self, metrics: Metrics, queue: JobQueue) -> None:
        self.metrics = metrics
        self.job_duration = Histogram(
            "pacs_export_job_duration_seconds",
            "Time a worker ran an export job, by outcome of the run.",
            ["outcome"],
            buckets=JOB_BUCKETS,
            registry=metrics.registry,
        )
        metrics.add_collector(
            GaugeCollector(
                "pacs_export_jobs",
                "Export jobs in the jobs' table, by state.",
                ["state"],
                lambda: (((state.value,), float(n)) for state, n in queue.counts().items()),
            )
        )

    def job_ran(self, outcome: str, seconds: float) -> None:
        self.job_duration.labels(outcome).observe(seconds)


def install(app: FastAPI, metrics: ExporterMetrics) -> None:
    """The request-id middleware, the HTTP metrics and ``GET /metrics`` on *app*."""
    install_observability(app, metrics.metrics, service=SERVICE)
