"""Liveness and readiness (for Kubernetes probes and operators)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pacs_common.probes import READINESS_RESPONSES, readiness

from pacs_api.deps import IndexDep, StoreDep

router = APIRouter(tags=["status"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses=READINESS_RESPONSES,
    summary="The index and the object store are reachable",
)
def readyz(index: IndexDep, store: StoreDep) -> JSONResponse:
    return readiness({"index": index.ping, "store": store.ping})
