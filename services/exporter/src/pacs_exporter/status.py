"""Liveness and readiness (for Kubernetes probes and operators)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pacs_common.probes import READINESS_RESPONSES, readiness

from pacs_exporter.deps import QueueDep, StoreDep

router = APIRouter(tags=["status"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The jobs' database and the object store are reachable",
    responses=READINESS_RESPONSES,
)
def readyz(queue: QueueDep, store: StoreDep) -> JSONResponse:
    return readiness({"database": queue.ping, "store": store.ping})
