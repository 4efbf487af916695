"""Cross-origin access for browser viewers (OHIF, our own UI): what the API's pages may use.

Off unless ``cors_allow_origins`` lists origins (``PACS_API_CORS_ALLOW_ORIGINS='["https://
viewer.example.org"]'``, or ``["*"]`` for any); :func:`pacs_common.cors.install_cors` does the
rest. The request headers DICOMweb clients send and the response headers they read are named
explicitly: dicomweb-client / OHIF read Content-Type (multipart boundary, transfer-syntax),
Content-Location, Warning (PS3.18 §8.3.5.1), Location, Content-Range and ETag.
"""

from __future__ import annotations

from fastapi import FastAPI
from pacs_common import cors

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


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Add the CORS middleware when origins are configured (nothing otherwise)."""
    cors.install_cors(
        app,
        settings.cors_allow_origins,
        methods=ALLOWED_METHODS,
        request_headers=ALLOWED_REQUEST_HEADERS,
        exposed_headers=EXPOSED_RESPONSE_HEADERS,
        allow_credentials=settings.cors_allow_credentials,
    )
