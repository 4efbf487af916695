"""The API's errors and their one renderer.

Every error a client can cause or meet is an :class:`ApiError` (the shared
:class:`pacs_common.problems.ServiceError`) with an HTTP status and a reason, rendered as
``application/problem+json`` (RFC 9457) by :func:`install_error_handlers`. Nothing
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

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pacs_common.openapi_problems import document_problems
from pacs_common.problems import (
    PROBLEM_JSON,
    BadRequest,
    Conflict,
    NotConfigured,
    NotFound,
    ServiceError,
    ServiceUnavailable,
    install_problem_handlers,
    problem,
)

__all__ = [
    "PROBLEM_JSON",
    "ApiError",
    "BadRequest",
    "Conflict",
    "NotAcceptable",
    "NotConfigured",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "ServiceUnavailable",
    "UnsupportedMediaType",
    "install_error_handlers",
    "problem",
    "warning_header",
]


#: Every API error is a :class:`pacs_common.problems.ServiceError`.
ApiError = ServiceError


class NotAcceptable(ApiError):
    status, title = 406, "Not Acceptable"


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


def _validation(exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}")
    return problem(400, "Bad Request", "; ".join(parts) or "invalid request")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to one problem+json answer (:mod:`pacs_common.problems`), and say so in
    the OpenAPI document (a request that cannot be validated is a 400)."""
    install_problem_handlers(app, database="index", validation=_validation)
    document_problems(app, validation_status=400)
