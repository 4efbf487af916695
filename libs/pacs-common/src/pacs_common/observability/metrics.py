"""A service's Prometheus metrics: one registry per application, exposed at ``GET /metrics``.

Each application (the API's, the exporter's, the bridge's) builds a :class:`Metrics` in its
factory and defines its metric objects on :attr:`Metrics.registry`; nothing is registered at
import, so two applications in one process (the tests) never see each other's counts.

Two kinds of metrics:

- counters and histograms that the code updates as things happen (requests, instances
  stored, DIMSE operations, job durations): they count what *this process* did;
- gauges read at scrape time from the shared database (:meth:`Metrics.add_collector`): the
  export jobs by state, the routing backlog; every process reports the same truth, so they
  need no aggregation across processes or replicas.

Several worker processes (``pacs-api serve --workers N``): with ``PROMETHEUS_MULTIPROC_DIR``
set, prometheus_client keeps the counters and histograms of every process in files of that
directory and :meth:`Metrics.exposition` sums them (its multiprocess mode), so any worker's
``/metrics`` answers for all of them. The ``serve`` commands set it to a fresh directory when
they start more than one process (:func:`prepare_multiprocess`). Without it, each process
answers for itself (one process per container, as in deploy/k8s, is the plain case).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Latency buckets (seconds) for HTTP requests and DIMSE operations: 5 ms to 2 min.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    """The metrics registry of one application and its scrape-time collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._scraped: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        """Register a collector read at every scrape (gauges from the database)."""
        self.registry.register(collector)
        self._scraped.append(collector)

    def exposition(self) -> bytes:
        """The text exposition format: this process's metrics, or every process's in
        multiprocess mode, plus the scrape-time collectors."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)


class GaugeCollector:
    """A gauge family computed at scrape time by *read*, which yields (label values, value).

    A failing read (the database is away) is logged and leaves the family out of that scrape
    rather than failing the whole ``/metrics``.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Iterable[str],
        read: Callable[[], Iterable[tuple[Iterable[str], float]]],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labels)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        try:
            for label_values, value in self.read():
                family.add_metric(list(label_values), value)
        except Exception:  # noqa: BLE001 - a scrape must not fail for one source
            log.warning("metrics: %s could not be read", self.name, exc_info=True)
            return
        yield family


def prepare_multiprocess(processes: int) -> Path | None:
    """Before starting *processes* worker processes: the metrics directory they share.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used and emptied of the previous run's files
    (prometheus_client asks for a directory wiped at start); without one, and with more than
    one process, a new temporary directory is made and set. One process needs none: None.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory
    if processes <= 1:
        return None
    directory = Path(tempfile.mkdtemp(prefix="pacs-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
