"""The readiness answer the services' ``/readyz`` give (Kubernetes readiness probes)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


def readiness(pings: Mapping[str, Callable[[], object]]) -> JSONResponse:
    """Call each dependency's ping: 200 when all answer, else 503; ``checks`` names each one's
    state (``ok`` or ``unavailable``), never the error's internals."""
    checks: dict[str, str] = {}
    for name, ping in pings.items():
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


_READINESS_SCHEMA = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"enum": ["ok", "unavailable"]}},
    },
}
#: The ``responses=`` of a ``/readyz`` route: what :func:`readiness` answers.
READINESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every dependency answers (checks names each).",
        "content": {"application/json": {"schema": _READINESS_SCHEMA}},
    },
    503: {
        "description": "A dependency cannot be reached (named in checks).",
        "content": {"application/json": {"schema": _READINESS_SCHEMA}},
    },
}
