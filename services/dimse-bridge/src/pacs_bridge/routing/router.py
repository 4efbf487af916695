"""The router: follows the API's change feed into the queue and delivers each destination's
queue, in threads of the bridge process.

One *follower* thread reads the feed page by page (:meth:`Queue.advance`), polling when idle;
one *deliverer* thread per destination sends its due deliveries in feed order, a batch per
association (:func:`.sender.deliver`), and backs off exponentially while the destination or
the archive fails. The first time routing runs on a database it starts at the feed's head
(routes apply to instances stored from then on, not to the archive's past); afterwards it
resumes from its cursor, so what is stored while the bridge is down is routed when it
returns. Only the replica that holds :class:`.leadership.Leadership` routes. Routes
and nodes (with their TLS contexts) are read from :attr:`Router.config` at every step, so a
configuration reload (:mod:`pacs_bridge.live`) applies to the next page and the next attempt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from pacs_common.changefeed import ChangeFeedClient
from pacs_common.client import DicomWebClient, DicomWebError
from pacs_common.observability.requestid import request_id_scope
from pynetdicom import AE

from pacs_bridge.observability import BridgeMetrics
from pacs_bridge.retrieve.move import Destination
from pacs_bridge.routing.leadership import Leadership
from pacs_bridge.routing.queue import Backoff, Delivery, Outcome, Queue
from pacs_bridge.routing.rules import Route
from pacs_bridge.routing.sender import AttemptFailed, deliver

log = logging.getLogger(__name__)

#: Seconds between attempts to become the leader while another replica routes.
STANDBY_INTERVAL = 5.0
#: Seconds between prunes of settled deliveries.
PRUNE_INTERVAL = 3600.0


@dataclass(frozen=True)
class RoutingConfig:
    """What the router reads at every step (replaced as a whole on a configuration reload)."""

    routes: Sequence[Route]
    destinations: Mapping[str, Destination]
    poll_interval: float
    page_size: int
    batch_size: int
    backoff: Backoff
    keep_settled: timedelta


class Router:
    """Store-and-forward routing of one bridge process."""

    def __init__(
        self,
        config: Callable[[], RoutingConfig],
        queue: Queue,
        feed: ChangeFeedClient,
        dicomweb: DicomWebClient,
        ae: AE,
        *,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.feed = feed
        self.dicomweb = dicomweb
        self.ae = ae
        self.metrics = metrics
        self.leadership = Leadership(queue.engine)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self.feed_error = ""

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Route in background threads. The first time routing runs on its database, the
        cursor is set to the feed's head here, before this returns (when the API answers), so
        that what is stored once the bridge has started is routed whichever thread runs
        first; else the follower sets it when the API answers."""
        try:
            self._start_at_head()
        except (httpx.HTTPError, DicomWebError) as exc:
            log.warning("routing: the change feed cannot be read yet: %s", exc)
        self._spawn("routing-follower", self._follow)

    def _start_at_head(self) -> None:
        if self.queue.started_at() is None:
            # Routes apply to what is stored from now on, not to the archive's past.
            self.queue.start_at(self.feed.read(0, 1).head)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=30)
        self.leadership.release()

    def wake(self) -> None:
        """Look at the queues now (a delivery was released from the quarantine)."""
        self._wake.set()

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        with self._lock:
            running = self._threads.get(name)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            self._threads[name] = thread
            thread.start()

    # -- following the feed ----------------------------------------------------------------

    def _follow(self) -> None:
        while not self._stop.is_set() and not self.leadership.acquire():
            self._stop.wait(STANDBY_INTERVAL)
        if self._stop.is_set():
            return
        log.info("routing: leading; following the change feed from %d", self.queue.cursor())
        last_prune = 0.0
        while not self._stop.is_set():
            config = self.config()
            for title in self.queue.destinations_pending():
                self._spawn(f"routing-{title}", self._deliver, title)
            try:
                self._start_at_head()
                page = self.feed.read(self.queue.cursor(), config.page_size)
            except (httpx.HTTPError, DicomWebError) as exc:
                if not self.feed_error:
                    log.warning("routing: the change feed cannot be read: %s", exc)
                self.feed_error = str(exc)
                self._stop.wait(config.poll_interval)
                continue
            self.feed_error = ""
            queued = self.queue.advance(page, config.routes)
            if queued:
                log.info("routing: %d deliveries queued up to feed entry %d", queued, page.next)
                for title in self.queue.destinations_pending():
                    self._spawn(f"routing-{title}", self._deliver, title)
                self._wake.set()
            if self._stop.wait(0) or len(page.changes) >= config.page_size:
                continue
            last_prune += config.poll_interval
            if last_prune >= PRUNE_INTERVAL:
                last_prune = 0.0
                self.queue.prune(config.keep_settled)
            self._stop.wait(config.poll_interval)

    # -- delivering ------------------------------------------------------------------------

    def _deliver(self, title: str) -> None:
        while not self._stop.is_set():
            config = self.config()
            wait = self.queue.wait(title)
            if wait > 0:
                self._stop.wait(min(wait, config.poll_interval))
                continue
            batch = self.queue.due(title, config.batch_size)
            if not batch:
                self._wake.wait(config.poll_interval)
                self._wake.clear()
                continue
            node = config.destinations.get(title)
            if node is None:
                reason = f"{title} is not a configured node (add it to nodes)"
                self.queue.destination_failed(title, reason, config.backoff)
                continue
            with request_id_scope():  # the attempt's WADO-RS calls carry it
                self._attempt(title, node, batch, config.backoff)

    def _attempt(
        self, title: str, node: Destination, batch: list[Delivery], backoff: Backoff
    ) -> None:
        outcomes: list[tuple[Delivery, Outcome]] = []
        try:
            self._deliver_batch(title, node, batch, backoff, outcomes)
        finally:
            if self.metrics is not None:
                self.metrics.delivered(title, (outcome for _, outcome in outcomes))

    def _deliver_batch(
        self,
        title: str,
        node: Destination,
        batch: list[Delivery],
        backoff: Backoff,
        outcomes: list[tuple[Delivery, Outcome]],
    ) -> None:
        try:
            for item, outcome in deliver(self.ae, title, node, batch, self.dicomweb):
                outcomes.append((item, outcome))
                if outcome.reason:
                    log.warning(
                        "routing: %s to %s: %s, %s",
                        item.instance,
                        title,
                        outcome.state,
                        outcome.reason,
                    )
        except AttemptFailed as exc:
            log.warning("routing: delivery to %s failed: %s", title, exc)
            self.queue.record(title, outcomes, backoff)
            self.queue.destination_failed(title, str(exc), backoff)
            return
        except Exception as exc:  # a bug or an unforeseen peer: keep routing, retry later
            log.exception("routing: delivery to %s failed unexpectedly", title)
            self.queue.record(title, outcomes, backoff)
            self.queue.destination_failed(title, f"unexpected error: {exc}", backoff)
            return
        self.queue.record(title, outcomes, backoff)
