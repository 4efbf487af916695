"""The bridge's HTTP status API: health probes and store-and-forward routing progress.

``GET /healthz`` (the process answers), ``GET /readyz`` (its database answers),
``GET /routing`` (every destination's queue: pending, delivered, failed, cancelled, oldest
waiting, backoff and last error), ``GET /routing/destinations/{ae_title}/deliveries``
(the deliveries, newest first, optionally in one state, with their last status and reason),
``POST /routing/destinations/{ae_title}/retry`` (failed deliveries back in the queue, backoff
ended), ``GET /routing/quarantine`` (deliveries held back because the instance's Pixel Data is
incomplete), ``POST /routing/deliveries/{id}/release`` (send it anyway) and
``DELETE /routing/deliveries/{id}`` (never send it; kept as ``dropped``), and ``GET /metrics``
(Prometheus, :mod:`pacs_bridge.observability`); ``pacs routing`` is its command line.

It authenticates as the API does (:mod:`pacs_common.auth`, the bridge's ``auth_*`` settings):
the progress and the quarantine list need the ``read`` scope; a retry, a release and a drop
``admin``; the probes and the metrics are public. With no authentication configured it is bound
to loopback unless told otherwise (:class:`pacs_bridge.settings.Settings`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import uvicorn
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pacs_common import cors
from pacs_common.auth import Principal, Scope
from pacs_common.auth.authenticator import Authenticator
from pacs_common.auth.http import auth_responses, requires
from pacs_common.observability.http import install_observability
from pacs_common.observability.metrics import Metrics
from pacs_common.problems import ServiceError, problem
from pydantic import BaseModel, Field
from sqlalchemy import text

from pacs_bridge.routing.queue import Queue, State
from pacs_bridge.routing.router import Router
from pacs_bridge.settings import Settings

#: A destination in a path: its AE title (PS3.5 table 6.2-1: at most 16 characters).
Title = Annotated[str, Path(min_length=1, max_length=16, description="Destination AE title.")]


class DestinationProgress(BaseModel):
    ae_title: str
    host: str | None = Field(description="The node's address (None: no longer configured).")
    port: int | None
    pending: int
    delivered: int = Field(description="Delivered and still listed (see routing_keep_settled).")
    failed: int = Field(description="Refused by the destination; retry with POST .../retry.")
    cancelled: int = Field(description="Deleted from the archive before delivery.")
    quarantined: int = Field(
        description="Not sent: the instance's Pixel Data is incomplete (GET /routing/quarantine)."
    )
    oldest_pending_at: datetime | None
    consecutive_failures: int
    next_attempt_at: datetime | None = Field(description="End of the backoff, if in one.")
    last_error: str
    last_error_at: datetime | None
    last_success_at: datetime | None


class RouteView(BaseModel):
    name: str
    to: list[str]


class NodeView(BaseModel):
    ae_title: str
    host: str
    port: int
    tls: bool


class RoutingStatus(BaseModel):
    leading: bool = Field(description="This replica routes (others stand by).")
    cursor: int = Field(description="Last change feed entry queued.")
    feed_error: str = Field(description="Why the change feed cannot be read, if it cannot.")
    nodes: list[NodeView] = Field(description="The known nodes (C-MOVE and routing targets).")
    routes: list[RouteView]
    destinations: list[DestinationProgress]


class DeliveryView(BaseModel):
    id: int = Field(description="The delivery (for release or drop from the quarantine).")
    destination: str
    seq: int = Field(description="The change feed entry.")
    route: str
    state: State
    study: str
    series: str
    instance: str
    sop_class: str
    attempts: int
    last_status: int | None = Field(description="The destination's last C-STORE status.")
    last_error: str
    created_at: datetime
    updated_at: datetime
    waived: bool = Field(description="Released from the quarantine: sent without the check.")


class Requeued(BaseModel):
    requeued: int


class Released(BaseModel):
    released: int = Field(description="The delivery, back in the queue.")


#: The caller of a mutating route, who must hold the ``admin`` scope (named in what it records).
AdminDep = Annotated[Principal, requires(Scope.ADMIN)]
DeliveryId = Annotated[int, Path(ge=1, description="The delivery's id.")]


def create_admin_app(
    current: Callable[[], Settings],
    queue: Queue,
    router: Router,
    metrics: Metrics,
    *,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """The status API over *queue*; *current* gives the settings in use (a reload swaps
    them); ``GET /metrics`` exposes *metrics* (:mod:`pacs_bridge.observability`); callers
    authenticate with *authenticator* (None: no authentication, loopback only)."""
    app = FastAPI(
        title="pacs-cloud DIMSE bridge status",
        version="1",
        description="Health probes and store-and-forward routing progress of the DIMSE bridge.",
    )
    app.state.authenticator = authenticator

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.headers)  # 401, 403, 503

    reads, administers = [requires(Scope.READ)], [requires(Scope.ADMIN)]
    install_cors(app, current().admin_cors_allow_origins)
    install_observability(app, metrics, service="pacs_bridge.admin")

    def known(ae_title: str) -> str:
        listed = {status.ae_title for status in queue.summary()}
        if ae_title not in current().nodes and ae_title not in listed:
            raise HTTPException(404, f"{ae_title!r} is neither a node nor a destination")
        return ae_title

    @app.get("/healthz", summary="The process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="The bridge's database answers",
        responses={503: {"description": "The database cannot be reached."}},
    )
    def readyz() -> dict[str, str]:
        try:
            with queue.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001  any driver error means "not ready"
            raise HTTPException(503, f"the bridge database cannot be reached: {exc}") from None
        return {"status": "ready"}

    @app.get(
        "/routing",
        summary="Progress of every routing destination",
        dependencies=reads,
        responses=auth_responses("'read'"),
    )
    def routing() -> RoutingStatus:
        settings = current()
        destinations = []
        for status in queue.summary():
            node = settings.nodes.get(status.ae_title)
            destinations.append(
                DestinationProgress(
                    host=node.host if node else None,
                    port=node.port if node else None,
                    **dataclasses.asdict(status),
                )
            )
        return RoutingStatus(
            leading=router.leading,
            cursor=queue.cursor(),
            feed_error=router.feed_error,
            nodes=[
                NodeView(ae_title=title, host=node.host, port=node.port, tls=node.tls)
                for title, node in sorted(settings.nodes.items())
            ],
            routes=[RouteView(name=r.name, to=list(r.to)) for r in settings.routes],
            destinations=destinations,
        )

    @app.get(
        "/routing/destinations/{ae_title}/deliveries",
        summary="Deliveries to one destination, newest first",
        dependencies=reads,
        responses={404: {"description": "Not a node or destination."}, **auth_responses("'read'")},
    )
    def deliveries(
        ae_title: Title,
        state: Annotated[State | None, Query(description="Only deliveries in this state.")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> list[DeliveryView]:
        rows = queue.deliveries(known(ae_title), state, limit)
        return [DeliveryView.model_validate(row, from_attributes=True) for row in rows]

    @app.post(
        "/routing/destinations/{ae_title}/retry",
        summary="Put failed deliveries back in the queue and end the backoff",
        dependencies=administers,
        responses={404: {"description": "Not a node or destination."}, **auth_responses("'admin'")},
    )
    def retry(ae_title: Title) -> Requeued:
        return Requeued(requeued=queue.retry(known(ae_title)))

    @app.get(
        "/routing/quarantine",
        summary="Deliveries not sent because the instance's Pixel Data is incomplete",
        dependencies=reads,
        responses=auth_responses("'read'"),
    )
    def quarantine(limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> list[DeliveryView]:
        rows = queue.quarantined(limit)
        return [DeliveryView.model_validate(row, from_attributes=True) for row in rows]

    @app.post(
        "/routing/deliveries/{delivery_id}/release",
        summary="Send a quarantined delivery anyway (without the Pixel Data check)",
        responses={
            404: {"description": "No quarantined delivery with that id."},
            **auth_responses("'admin'"),
        },
    )
    def release(delivery_id: DeliveryId, principal: AdminDep) -> Released:
        if not queue.release(delivery_id, principal.subject):
            raise HTTPException(404, f"no quarantined delivery {delivery_id}")
        router.wake()
        return Released(released=delivery_id)

    @app.delete(
        "/routing/deliveries/{delivery_id}",
        status_code=204,
        summary="Never send a quarantined delivery (kept listed as dropped)",
        responses={
            404: {"description": "No quarantined delivery with that id."},
            **auth_responses("'admin'"),
        },
    )
    def drop(delivery_id: DeliveryId, principal: AdminDep) -> Response:
        if not queue.drop(delivery_id, principal.subject):
            raise HTTPException(404, f"no quarantined delivery {delivery_id}")
        return Response(status_code=204)

    return app


class AdminServer:
    """uvicorn serving the status API in a background thread."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.server = uvicorn.Server(
            # log_config None: uvicorn's records go to the process's logging (JSON or text)
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", access_log=False, log_config=None
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="admin-http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.02)
        if not self.server.started:
            raise RuntimeError("the status API could not start (is its port in use?)")

    @property
    def port(self) -> int:
        sockets = [s for server in self.server.servers for s in server.sockets]
        port: int = sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """CORS for browser pages (the API's dashboard): off unless *origins* are listed. The page
    reads the status, posts retries and releases, and deletes quarantined deliveries (no
    body)."""
    cors.install_cors(
        app,
        origins,
        methods=("GET", "POST", "DELETE", "OPTIONS"),
        request_headers=("Accept", "Authorization", "Content-Type"),
    )
