"""The exporter service's HTTP errors and their one renderer (problem+json, RFC 9457).

(The core's errors are :mod:`pacs_exporter.errors`; a job records those as its ``error``.)

    ServiceError
    ├── BadRequest (400)          a body that is not JSON
    ├── NotFound (404)            unknown job
    ├── Conflict (409)            the job has no file (yet, or any more)
    ├── Unprocessable (422)       a request that names no valid export (reasons listed)
    └── ServiceUnavailable (503)  the jobs' database or the object store unreachable
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pacs_common.storage import StoreError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ServiceError(Exception):
    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ServiceError):
    status, title = 400, "Bad Request"


class NotFound(ServiceError):
    status, title = 404, "Not Found"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class Unprocessable(ServiceError):
    status, title = 422, "Unprocessable Content"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to one problem+json answer."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("object store unavailable: %s", exc)
        return problem(
            503,
            "Service Unavailable",
            "the object store is unavailable; retry later",
            {"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _database_error(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("jobs database unavailable: %s", exc)
        return problem(
            503,
            "Service Unavailable",
            "the jobs database is unavailable; retry later",
            {"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
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

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal Server Error", "an unexpected error occurred; it was logged")
