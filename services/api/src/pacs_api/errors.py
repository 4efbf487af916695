"""The API's errors and their one renderer.

Every error a client can cause or meet is an :class:`ApiError` with an HTTP status and a reason,
rendered as ``application/problem+json`` (RFC 9457) by :func:`install_error_handlers`. Nothing
else reaches the client as a 500 with a traceback: an unexpected exception is logged with its
traceback and answered as a plain 500 problem that names no internals.

    ApiError
    ├── BadRequest (400)         malformed query parameter, broken multipart, bad UID
    ├── NotFound (404)           unknown study / series / instance
    ├── NotAcceptable (406)      no acceptable media type or transfer syntax
    ├── Conflict (409)
    ├── PayloadTooLarge (413)    body over the configured limit
    ├── RangeNotSatisfiable (416) a byte range past the end of a bulk data value
    ├── UnsupportedMediaType (415)
    ├── ServiceUnavailable (503) index or object store unreachable (with Retry-After)
    └── NotConfigured (503)      a feature needs configuration it lacks (no Retry-After)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pacs_common.storage.base import StoreError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class NotAcceptable(ApiError):
    status, title = 406, "Not Acceptable"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ApiError):
    status, title = 413, "Payload Too Large"


class RangeNotSatisfiable(ApiError):
    """416 (RFC 9110 §15.5.17), with the ``Content-Range: bytes */length`` it requires."""

    status, title = 416, "Range Not Satisfiable"

    def __init__(self, length: int) -> None:
        super().__init__(
            f"the range starts past the end of the {length}-byte value",
            headers={"Content-Range": f"bytes */{length}"},
        )


class UnsupportedMediaType(ApiError):
    status, title = 415, "Unsupported Media Type"


class ServiceUnavailable(ApiError):
    status, title = 503, "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class NotConfigured(ApiError):
    """503 without Retry-After: retrying will not help until an operator configures it."""

    status, title = 503, "Service Unavailable"


MAX_WARNING_CHARS = 500


def warning_header(text: str, agent: str = "pacs-cloud") -> str:
    """A ``Warning`` header value as PS3.18 §8.3.5.1 uses it (RFC 7234 §5.5): code 299, the
    warn-agent, and the text quoted in printable ASCII (header values are not UTF-8), quotes
    and backslashes escaped, long texts shortened."""
    text = text.replace("§", "sec. ")
    if len(text) > MAX_WARNING_CHARS:
        text = text[: MAX_WARNING_CHARS - 3] + "..."
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    quoted = safe.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 {agent} "{quoted}"'


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

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
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
    @app.exception_handler(PoolTimeoutError)
    async def _index_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("index database unavailable: %s", exc)
        return problem(
            503,
            "Service Unavailable",
            "the index database is unavailable; retry later",
            {"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
        return problem(400, "Bad Request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal Server Error", "an unexpected error occurred; it was logged")
