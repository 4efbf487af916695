"""Liveness and readiness (for Kubernetes probes and operators)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pacs_api.deps import IndexDep, StoreDep

router = APIRouter(tags=["status"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The index and the object store are reachable")
def readyz(index: IndexDep, store: StoreDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, ping in (("index", index.ping), ("store", store.ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("readiness: %s unavailable: %s", name, exc)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
