"""HTTP errors of the services and their one renderer: ``application/problem+json`` (RFC 9457).

Every error a client can cause or meet is a :class:`ServiceError` with an HTTP status and a
reason; :func:`install_problem_handlers` renders it, and turns an unreachable database or
object store into 503 with ``Retry-After``. Nothing reaches a client as a 500 with a
traceback: an unexpected exception is logged with its traceback and answered as a plain 500
problem that names no internals. Each service adds its own subclasses (the API's 406, 413,
415, 416; the exporter's 422) in its ``errors``/``problems`` module.

    ServiceError
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── ServiceUnavailable (503)  a dependency unreachable (with Retry-After)
    └── NotConfigured (503)       a feature needs configuration it lacks (no Retry-After)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pacs_common.storage import StoreError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: Seconds a client is asked to wait when a dependency is unreachable.
RETRY_AFTER_SECONDS = 5


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


class Unauthorized(ServiceError):
    """No or unusable credentials (RFC 9110 §15.5.2); carries a ``WWW-Authenticate`` challenge."""

    status, title = 401, "Unauthorized"


class Forbidden(ServiceError):
    """Authenticated, but without the scope the action needs (RFC 9110 §15.5.4)."""

    status, title = 403, "Forbidden"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class ServiceUnavailable(ServiceError):
    """A dependency failed; the client may repeat the request after ``Retry-After``."""

    status, title = 503, "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class NotConfigured(ServiceError):
    """503 without Retry-After: retrying will not help until an operator configures it."""

    status, title = 503, "Service Unavailable"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _unavailable(detail: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return problem(503, "Service Unavailable", detail, headers)


def install_problem_handlers(
    app: FastAPI,
    *,
    database: str,
    validation: Callable[[RequestValidationError], JSONResponse],
) -> None:
    """Map every error to one problem+json answer; *database* names the service's database in
    the 503 detail ("index", "jobs"), *validation* answers a request FastAPI could not
    validate (each service words its 400/422)."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("object store unavailable: %s", exc)
        return _unavailable("the object store is unavailable; retry later")

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("%s database unavailable: %s", database, exc)
        return _unavailable(f"the {database} database is unavailable; retry later")

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal Server Error", "an unexpected error occurred; it was logged")
