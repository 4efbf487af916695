"""Liveness and readiness (for Kubernetes probes and operators)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pacs_exporter.deps import QueueDep, StoreDep

router = APIRouter(tags=["status"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The jobs' database and the object store are reachable",
    responses={503: {"description": "One of them cannot be reached (named in checks)."}},
)
def readyz(queue: QueueDep, store: StoreDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, ping in (("database", queue.ping), ("store", store.ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("readiness: %s unavailable: %s", name, exc)
            checks[name] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
