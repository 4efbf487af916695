"""Cross-origin access for browser viewers (OHIF, our own UI): CORS per the Fetch standard.

Off unless ``cors_allow_origins`` lists origins (``PACS_API_CORS_ALLOW_ORIGINS='["https://
viewer.example.org"]'``, or ``["*"]`` for any). When on, Starlette's ``CORSMiddleware`` answers
preflight requests (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) itself and
adds ``Access-Control-Allow-Origin`` to the answers for allowed origins only; an origin not
listed gets no CORS header, so the browser withholds the answer from the page.

The request headers DICOMweb clients send and the response headers they read are named
explicitly: browsers hide every response header outside the CORS-safelisted ones unless it is
exposed, and dicomweb-client / OHIF read Content-Type (multipart boundary, transfer-syntax),
Content-Location, Warning (PS3.18 §8.3.5.1), Location, Content-Range and ETag.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from pacs_api.settings import Settings

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
ALLOWED_REQUEST_HEADERS = (
    "Accept",
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Range",
    "Range",
    "X-Request-ID",
)
EXPOSED_RESPONSE_HEADERS = (
    "Accept-Ranges",
    "Allow",
    "Content-Length",
    "Content-Location",
    "Content-Range",
    "Content-Type",
    "ETag",
    "Location",
    "Retry-After",
    "Warning",
    "X-Request-ID",
)
PREFLIGHT_MAX_AGE_SECONDS = 600


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Add the CORS middleware when origins are configured (nothing otherwise)."""
    if not settings.cors_allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_REQUEST_HEADERS),
        expose_headers=list(EXPOSED_RESPONSE_HEADERS),
        allow_credentials=settings.cors_allow_credentials,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
