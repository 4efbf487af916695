"""The exporter service's HTTP errors, rendered as problem+json (RFC 9457) by the shared
renderer (:mod:`pacs_common.problems`).

(The core's errors are :mod:`pacs_exporter.errors`; a job records those as its ``error``.)

    ServiceError (pacs_common.problems)
    ├── BadRequest (400)          a body that is not JSON
    ├── NotFound (404)            unknown job
    ├── Conflict (409)            the job has no file (yet, or any more)
    ├── Unprocessable (422)       a request that names no valid export (reasons listed)
    └── ServiceUnavailable (503)  the jobs' database or the object store unreachable
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pacs_common.openapi_problems import document_problems
from pacs_common.problems import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceError,
    ServiceUnavailable,
    install_problem_handlers,
    problem,
)

__all__ = [
    "BadRequest",
    "Conflict",
    "NotFound",
    "ServiceError",
    "ServiceUnavailable",
    "Unprocessable",
    "install_error_handlers",
]


class Unprocessable(ServiceError):
    status, title = 422, "Unprocessable Content"


def _validation(exc: RequestValidationError) -> JSONResponse:
    """A body that is not JSON is a 400; a JSON body that is not a valid export, 422."""
    errors = exc.errors()
    malformed = any(err.get("type") == "json_invalid" for err in errors)
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    status, title = (400, "Bad Request") if malformed else (422, "Unprocessable Content")
    return problem(status, title, "; ".join(parts) or "invalid request")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to one problem+json answer."""
    install_problem_handlers(app, database="jobs", validation=_validation)
    document_problems(app, validation_status=422, malformed_body_status=400)
