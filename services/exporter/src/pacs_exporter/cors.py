"""Cross-origin access for browser pages (the API's dashboard at ``/ui``): CORS per the Fetch
standard, as in the API's ``pacs_api.cors``.

Off unless ``cors_allow_origins`` lists origins (``PACS_EXPORTER_CORS_ALLOW_ORIGINS='["http://
127.0.0.1:8080"]'``). The page submits jobs (POST with a JSON body: a preflight), polls them,
cancels them and downloads their file; it reads ``Location`` and ``Content-Disposition``.
"""

from __future__ import annotations

from fastapi import FastAPI
from pacs_common import cors

from pacs_exporter.settings import Settings

ALLOWED_METHODS = ("GET", "HEAD", "POST", "DELETE", "OPTIONS")
ALLOWED_REQUEST_HEADERS = ("Accept", "Authorization", "Content-Type")
EXPOSED_RESPONSE_HEADERS = ("Content-Disposition", "Content-Length", "Location", "Retry-After")


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Add the CORS middleware when origins are configured (nothing otherwise)."""
    cors.install_cors(
        app,
        settings.cors_allow_origins,
        methods=ALLOWED_METHODS,
        request_headers=ALLOWED_REQUEST_HEADERS,
        exposed_headers=EXPOSED_RESPONSE_HEADERS,
    )
