"""The bridge's metrics, operation logs and request ids (:mod:`pacs_common.observability`).

Served by the status API at ``GET /metrics`` (:mod:`pacs_bridge.admin`), besides its HTTP
metrics:

- ``pacs_dimse_associations_total{outcome="accepted"|"rejected"}``: association requests
  answered (A-ASSOCIATE-AC or -RJ: the allow-list, an unknown called AE title, too many
  associations);
- ``pacs_dimse_operations_total{command, status}``: DIMSE operations answered, by command
  (``C-ECHO``, ``C-STORE``, ``C-FIND``, ``C-GET``, ``C-MOVE``) and the category of the final
  response's status (``success``, ``warning``, ``failure``, ``cancel``; pynetdicom's
  ``code_to_category``, PS3.7 annex C); pending responses are not operations;
- ``pacs_routing_deliveries_total{destination, outcome}``: routing attempts per instance:
  ``delivered``, ``failed`` (refused), ``cancelled`` (deleted before delivery), ``pending``
  (to try again);
- ``pacs_routing_backlog{destination, state="pending"|"failed"}``: deliveries waiting or
  refused, read from the routing queue at scrape time.

Both counters are read off what goes on the wire (``EVT_ACSE_SENT``, ``EVT_DIMSE_SENT``), so
they count what the peer was told, including answers pynetdicom gives by itself.

Request ids: every association request and every DIMSE operation gets a new id
(:func:`operation`), set in the association's thread; the DICOMweb calls the operation makes
send it as ``X-Request-ID`` (the bridge's httpx client carries the hook), and the operation's
log record (``pacs_bridge.operations``: command, status, calling AE title) carries it, so one
C-STORE can be followed from the bridge's log into the API's access log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from pacs_common.observability.metrics import GaugeCollector, Metrics
from pacs_common.observability.requestid import (
    current_request_id,
    new_request_id,
    set_request_id,
)
from prometheus_client import Counter
from pynetdicom import evt
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.status import code_to_category

from pacs_bridge.routing.queue import Outcome, Queue

SERVICE = "pacs_bridge"
COMMANDS = ("C-ECHO", "C-STORE", "C-FIND", "C-GET", "C-MOVE")
_RESPONSES = {f"{command.replace('-', '_')}_RSP": command for command in COMMANDS}

log = logging.getLogger("pacs_bridge.operations")

P = ParamSpec("P")
R = TypeVar("R")


class BridgeMetrics:
    """The bridge's own metrics, in *metrics*' registry; the backlog read from *queue*."""

    def __init__(self, metrics: Metrics, queue: Queue) -> None:
        self.metrics = metrics
        self.associations = Counter(
            "pacs_dimse_associations",
            "DIMSE association requests answered, by outcome (accepted or rejected).",
            ["outcome"],
            registry=metrics.registry,
        )
        self.operations = Counter(
            "pacs_dimse_operations",
            "DIMSE operations answered, by command and status category of the final response.",
            ["command", "status"],
            registry=metrics.registry,
        )
        self.deliveries = Counter(
            "pacs_routing_deliveries",
            "Routing delivery attempts per instance, by destination and outcome.",
            ["destination", "outcome"],
            registry=metrics.registry,
        )
        metrics.add_collector(
            GaugeCollector(
                "pacs_routing_backlog",
                "Routing deliveries per destination waiting (pending) or refused (failed).",
                ["destination", "state"],
                lambda: _backlog(queue),
            )
        )

    def handlers(self) -> list[EventHandlerType]:
        """Notification handlers that count what is sent to the peer."""
        return [
            (evt.EVT_ACSE_SENT, self._acse_sent),
            (evt.EVT_DIMSE_SENT, self._dimse_sent),
        ]

    def _acse_sent(self, event: Event) -> None:
        primitive = event.primitive  # type: ignore[attr-defined]
        if isinstance(primitive, A_ASSOCIATE) and primitive.result is not None:
            outcome = "accepted" if primitive.result == 0x00 else "rejected"
            self.associations.labels(outcome).inc()

    def _dimse_sent(self, event: Event) -> None:
        message = event.message
        command = _RESPONSES.get(type(message).__name__)
        if command is None:
            return  # a request (C-GET sub-operations send C-STORE-RQ)
        status = int(getattr(message.command_set, "Status", 0x0000))
        category = str(code_to_category(status)).lower()
        if category == "pending":
            return
        self.operations.labels(command, category).inc()
        log.info(
            "%s from %s: %s (0x%04X)",
            command,
            event.assoc.requestor.ae_title,
            category,
            status,
            extra={
                "command": command,
                "status": status,
                "category": category,
                "calling_ae": event.assoc.requestor.ae_title,
                "peer": event.assoc.requestor.address,
                "request_id": current_request_id(),
            },
        )

    def delivered(self, destination: str, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.deliveries.labels(destination, outcome.state.value).inc()


def _backlog(queue: Queue) -> list[tuple[tuple[str, str], float]]:
    rows: list[tuple[tuple[str, str], float]] = []
    for status in queue.summary():
        rows.append(((status.ae_title, "pending"), status.pending))
        rows.append(((status.ae_title, "failed"), status.failed))
    return rows


def operation(handler: Callable[P, R]) -> Callable[P, R]:
    """Run *handler* (an association request or a DIMSE operation) under a new request id,
    in the association's thread: its logs and DICOMweb calls carry it (until the next
    operation of the association sets its own)."""

    @functools.wraps(handler)
    def with_request_id(*args: P.args, **kwargs: P.kwargs) -> R:
        set_request_id(new_request_id())
        return handler(*args, **kwargs)

    return with_request_id
